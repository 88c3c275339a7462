-- wrk script for availability without BookingCacheTTL's help: the same query with a parameter the API ignores
-- (v=N) that changes on every request, so that no two requests share a cache entry.
--   wrk -s bench/availability-cold.lua URL -- /path?query
local path
local n = 0

function init(args)
    path = args[1]
end

function request()
    n = n + 1
    return wrk.format("GET", path .. "&v=" .. n)
end
