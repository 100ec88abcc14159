-- One pending device's poll of the token endpoint (RFC 8628 §3.4), over and over. Arguments:
-- the form body (grant_type, device_code, client_id). The answers a pending device expects,
-- HTTP 400 with authorization_pending or slow_down, count as completed; anything else as an error.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local req

function init(args)
  req = wrk.format("POST", nil, { ["Content-Type"] = "application/x-www-form-urlencoded" }, args[1])
end

function request() return req end

function on_response(status, headers, body)
  if status == 400 and (body:find("authorization_pending", 1, true) or body:find("slow_down", 1, true)) then
    completed = completed + 1
  else
    non2xx = non2xx + 1
  end
end
