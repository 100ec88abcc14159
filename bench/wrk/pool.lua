-- POST one body per request from a pool file (one form body per line): single-use credentials
-- (refresh tokens, authorization codes). Thread i of n takes lines i, i+n, i+2n, ... so no two
-- requests ever present the same credential. Arguments: pool file, Authorization header, number
-- of threads, delay in ms between requests on a connection (0 = as fast as possible).
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local bodies = {}
local position = 0
local auth
local pause = 0
exhausted = 0

function init(args)
  local path, nthreads = args[1], tonumber(args[3])
  auth = args[2]
  pause = tonumber(args[4] or "0") or 0
  local index = 0
  for line in io.lines(path) do
    if index % nthreads == thread_id then table.insert(bodies, line) end
    index = index + 1
  end
end

function request()
  position = position + 1
  if position > #bodies then
    -- Out of credentials: count it and stop this thread rather than replay one.
    exhausted = 1
    wrk.thread:stop()
    position = #bodies
  end
  return wrk.format("POST", nil, {
    ["Authorization"] = auth,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }, bodies[position])
end

function delay() return pause end
