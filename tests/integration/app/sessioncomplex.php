<?php
// Codec probe: ?write=1 stores a fixture of every PHP type a session commonly holds under
// $_SESSION['complex'] (plus scalars at the top level); every call prints
// {"id", "session", "encoded": session_encode(), "match": $_SESSION equals the fixture}.
// A module that rewrites the session blob must leave "match" true.
function fixture(): array
{
    $obj = new stdClass();
    $obj->name = 'object';
    $obj->count = 3;
    $obj->inner = new stdClass();
    $obj->inner->flag = true;
    return [
        'top_int' => 7,
        'top_str' => 'plain',
        'complex' => [
            'int' => 42,
            'neg' => -17,
            'big' => PHP_INT_MAX,
            'zero' => 0,
            'float' => 3.25,
            'float_tenth' => 0.1,
            'float_neg' => -2.5e-5,
            'true' => true,
            'false' => false,
            'null' => null,
            'empty_str' => '',
            'str' => "quote\" semicolon; pipe| colon: brace{ newline\n",
            'utf8' => "h\u{e9}llo w\u{f6}rld \u{2603}",
            'list' => [1, 2, 3],
            'empty' => [],
            'int_keys' => [10 => 'ten', 20 => 'twenty'],
            'nested' => ['a' => ['b' => ['c' => 'deep', 'd' => [true, 1.5, null]]]],
            'object' => $obj,
        ],
    ];
}

// strict (type-preserving) equality that compares objects by class and properties, not identity
function same($a, $b): bool
{
    if (is_object($a) || is_object($b)) {
        return is_object($a) && is_object($b) && get_class($a) === get_class($b)
            && same(get_object_vars($a), get_object_vars($b));
    }
    if (is_array($a) || is_array($b)) {
        if (!is_array($a) || !is_array($b) || array_keys($a) !== array_keys($b)) {
            return false;
        }
        foreach ($a as $k => $v) {
            if (!same($v, $b[$k])) {
                return false;
            }
        }
        return true;
    }
    return $a === $b;
}

session_start();
if (isset($_GET['write'])) {
    foreach (fixture() as $k => $v) {
        $_SESSION[$k] = $v;
    }
}
$expected = fixture();
$match = true;
foreach ($expected as $k => $v) {
    if (!array_key_exists($k, $_SESSION) || !same($_SESSION[$k], $v)) {
        $match = false;
    }
}
header('Content-Type: application/json');
echo json_encode([
    'id' => session_id(),
    'session' => (object)$_SESSION,
    'encoded' => session_encode(),
    'match' => $match,
], JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION), "\n";
