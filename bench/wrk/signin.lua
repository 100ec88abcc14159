-- The full password sign-in of a browser, five requests per sign-in, one connection per thread:
--   1. GET  /o/authorize/?...            (anonymous)      -> 302 to the login page
--   2. GET  /accounts/login/?next=...                     -> 200, CSRF cookie and form token
--   3. POST /accounts/login/?next=...    (user, password) -> 302 back to /o/authorize/, session
--   4. GET  /o/authorize/?...            (session cookie) -> 302 to the app with a code
--      (consent skipped: the bench client is trusted)
--   5. POST /o/token/                    (code + PKCE)    -> 200 with the tokens
-- `completed` counts sign-ins that reached step 5's 200; any other answer counts in `non2xx`
-- and the browser starts again. Each sign-in comes from its own address (X-Forwarded-For, the
-- bench trusts one proxy) so allauth's per-IP limit (30/min) applies as it would to real users.
-- Arguments: authorize query, password, number of users, token Authorization header, verifier,
-- redirect URI, number of threads, and optionally the prefix of the user names ("user": the
-- local users of bench/seed.py; "dir": the directory's people of bench/directory.py).
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local authorize_query, password, users, token_auth, verifier, redirect_uri, nthreads, prefix
local step, iteration = 1, 0
local location, csrf_cookie, csrf_token, session_cookie, code, address, username

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

function init(args)
  authorize_query, password, users = args[1], args[2], tonumber(args[3])
  token_auth, verifier, redirect_uri, nthreads = args[4], args[5], args[6], tonumber(args[7])
  prefix = args[8] or "user"
end

local function begin()
  step = 1
  iteration = iteration + 1
  local n = iteration * nthreads + thread_id
  address = string.format("10.%d.%d.%d", thread_id % 250, math.floor(n / 250) % 250, n % 250)
  username = prefix .. (n % users)
  csrf_cookie, session_cookie = nil, nil
end

local debug = os.getenv("BENCH_DEBUG")

local function fail(status, headers, body)
  if debug and non2xx < 3 then
    io.stderr:write(string.format("sign-in step %d got %s %s\n%s\n", step, tostring(status),
      tostring(headers and headers["Location"]), body and body:sub(1, 300) or ""))
  end
  non2xx = non2xx + 1
  begin()
end

local function cookie(headers, name)
  local value = headers["Set-Cookie"]
  return value and value:match(name .. "=([^;]+)")
end

function request()
  if iteration == 0 then begin() end
  local headers = { ["X-Forwarded-For"] = address }
  if step == 1 then
    return wrk.format("GET", "/o/authorize/?" .. authorize_query, headers)
  elseif step == 2 then
    return wrk.format("GET", location, headers)
  elseif step == 3 then
    headers["Cookie"] = "idp_csrf=" .. csrf_cookie
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    local body = "csrfmiddlewaretoken=" .. urlencode(csrf_token) .. "&login=" .. username ..
      "&password=" .. urlencode(password)
    return wrk.format("POST", location, headers, body)
  elseif step == 4 then
    headers["Cookie"] = "idp_session=" .. session_cookie
    return wrk.format("GET", location, headers)
  else
    headers["Authorization"] = token_auth
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    local body = "grant_type=authorization_code&code=" .. urlencode(code) ..
      "&redirect_uri=" .. urlencode(redirect_uri) .. "&code_verifier=" .. urlencode(verifier)
    return wrk.format("POST", "/o/token/", headers, body)
  end
end

function on_response(status, headers, body)
  if step == 1 then
    location = headers["Location"]
    if status ~= 302 or not location or not location:find("/accounts/login/", 1, true) then
      return fail(status, headers, body)
    end
    step = 2
  elseif step == 2 then
    csrf_cookie = cookie(headers, "idp_csrf")
    csrf_token = body:match('name="csrfmiddlewaretoken" value="([^"]+)"')
    if status ~= 200 or not csrf_cookie or not csrf_token then return fail(status, headers, body) end
    step = 3
  elseif step == 3 then
    session_cookie = cookie(headers, "idp_session")
    location = headers["Location"]
    if status ~= 302 or not session_cookie or not location
      or not location:find("/o/authorize/", 1, true) then
      return fail(status, headers, body)
    end
    step = 4
  elseif step == 4 then
    location = headers["Location"]
    code = location and location:match("[?&]code=([^&]+)")
    if status ~= 302 or not code then return fail(status, headers, body) end
    code = code:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
    step = 5
  else
    if status ~= 200 then return fail(status, headers, body) end
    completed = completed + 1
    begin()
  end
end
