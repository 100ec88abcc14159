-- GET or POST one fixed request. Arguments: method, body ("" for none), Authorization header
-- ("" for none), delay in ms between requests on a connection (0 = as fast as possible).
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local req
local pause = 0

function init(args)
  local method, body, auth = args[1] or "GET", args[2] or "", args[3] or ""
  pause = tonumber(args[4] or "0") or 0
  local headers = {}
  if auth ~= "" then headers["Authorization"] = auth end
  if body ~= "" then
    headers["Content-Type"] = "application/x-www-form-urlencoded"
  else
    body = nil
  end
  req = wrk.format(method, nil, headers, body)
end

function request() return req end

function delay() return pause end
