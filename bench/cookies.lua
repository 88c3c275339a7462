-- wrk script for returning visitors: each request sends the next Cookie header value of a file (one per line), so
-- that the load spreads over many visitors as it does on a real site.
--   wrk -s bench/cookies.lua URL -- cookies.txt
local cookies = {}
local next_cookie = 0

function init(args)
    for line in io.lines(args[1]) do
        cookies[#cookies + 1] = line
    end
end

function request()
    next_cookie = next_cookie % #cookies + 1
    return wrk.format("GET", nil, { ["Cookie"] = cookies[next_cookie] })
end
