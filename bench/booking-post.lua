-- wrk script for the booking-creation scenario: POSTs the JSON bodies of a file (one per line) in turn, each a
-- different free slot, so that every request is a real booking rather than a conflict.
--   wrk -s bench/booking-post.lua URL -- bodies.jsonl
local bodies = {}
local next_body = 0

function init(args)
    for line in io.lines(args[1]) do
        bodies[#bodies + 1] = line
    end
end

function request()
    next_body = next_body % #bodies + 1
    return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, bodies[next_body])
end
