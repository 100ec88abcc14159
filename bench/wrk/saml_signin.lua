-- An SP-initiated SAML sign-in of a browser, four requests per sign-in, one connection per thread:
--   1. GET  /saml/sso/redirect/?SAMLRequest=...  (anonymous) -> 302 to the login page; the checked
--      request kept in a new anonymous session
--   2. GET  /accounts/login/?next=/saml/sso/continue/<key>/  -> 200, CSRF cookie and form token
--   3. POST /accounts/login/?next=...        (user, password) -> 302 to the resume URL, session
--   4. GET  /saml/sso/continue/<key>/        (session cookie) -> 200, the page that posts the
--      signed SAMLResponse to the app's ACS
-- `completed` counts sign-ins that reached step 4's page with a SAMLResponse; any other answer
-- counts in `non2xx` and the browser starts again. Each sign-in comes from its own address, as
-- in signin.lua. The ACS itself is the app's, not ours: nothing more to send.
--
-- The AuthnRequest goes over HTTP-Redirect, the binding most SPs send it with, and is made here
-- for every sign-in: a fresh random ID (the IdP refuses a replayed one) and the current
-- IssueInstant (the IdP accepts ±3 minutes), so no pool is minted and none can go stale. The
-- binding wants raw DEFLATE (SAML Bindings §3.4.4.1); DEFLATE's stored blocks (RFC 1951
-- §3.2.4: a 5-byte header, then the bytes as they are) are valid DEFLATE that needs no
-- compressor, and the IdP inflates them with the same zlib call as any other. The request is
-- unsigned (the bench app does not require signing): Lua has no RSA.
-- Arguments: password, number of users, SP entity ID, ACS URL, Destination, number of threads.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local password, users, sp_entity_id, acs_url, destination, nthreads
local step, iteration = 1, 0
local location, csrf_cookie, csrf_token, session_cookie, address, username

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function base64(data)
  local out = {}
  for i = 1, #data, 3 do
    local a, b, c = data:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1 = math.floor(n / 262144) % 64
    local c2 = math.floor(n / 4096) % 64
    local c3 = math.floor(n / 64) % 64
    local c4 = n % 64
    out[#out + 1] = B64:sub(c1 + 1, c1 + 1) .. B64:sub(c2 + 1, c2 + 1)
      .. (b and B64:sub(c3 + 1, c3 + 1) or "=") .. (c and B64:sub(c4 + 1, c4 + 1) or "=")
  end
  return table.concat(out)
end

-- One final stored block: BFINAL=1, BTYPE=00, then LEN and its one's complement, little-endian.
local function deflate_stored(data)
  local n = #data
  assert(n <= 65535, "one stored block holds at most 65535 bytes")
  local complement = 65535 - n
  return string.char(1, n % 256, math.floor(n / 256), complement % 256,
    math.floor(complement / 256)) .. data
end

local function random_hex(bytes)
  local parts = {}
  for i = 1, bytes do parts[i] = string.format("%02x", math.random(0, 255)) end
  return table.concat(parts)
end

local function authn_request()
  local xml = '<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"'
    .. ' xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"'
    .. ' ID="_' .. random_hex(20) .. '" Version="2.0"'
    .. ' IssueInstant="' .. os.date("!%Y-%m-%dT%H:%M:%SZ") .. '"'
    .. ' Destination="' .. destination .. '"'
    .. ' AssertionConsumerServiceURL="' .. acs_url .. '"'
    .. ' ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">'
    .. '<saml:Issuer>' .. sp_entity_id .. '</saml:Issuer>'
    .. '<samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"'
    .. ' AllowCreate="true"/>'
    .. '</samlp:AuthnRequest>'
  return "/saml/sso/redirect/?SAMLRequest=" .. urlencode(base64(deflate_stored(xml)))
    .. "&RelayState=bench"
end

function init(args)
  password, users = args[1], tonumber(args[2])
  sp_entity_id, acs_url, destination, nthreads = args[3], args[4], args[5], tonumber(args[6])
  -- Each thread its own sequence: IDs must not repeat across threads or runs.
  math.randomseed(os.time() * 1000 + thread_id * 7919 + math.floor(os.clock() * 1e6))
end

local function begin()
  step = 1
  iteration = iteration + 1
  local n = iteration * nthreads + thread_id
  address = string.format("10.%d.%d.%d", thread_id % 250, math.floor(n / 250) % 250, n % 250)
  username = "user" .. (n % users)
  csrf_cookie, session_cookie = nil, nil
end

local debug = os.getenv("BENCH_DEBUG")

local function fail(status, headers, body)
  if debug and non2xx < 3 then
    io.stderr:write(string.format("SAML sign-in step %d got %s %s\n%s\n", step, tostring(status),
      tostring(headers and headers["Location"]),
      body and (body:match('name="SAMLResponse" value="([^"]+)"') or body:sub(1, 300)) or ""))
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
    return wrk.format("GET", authn_request(), headers)
  elseif step == 2 then
    headers["Cookie"] = "idp_session=" .. session_cookie
    return wrk.format("GET", location, headers)
  elseif step == 3 then
    headers["Cookie"] = "idp_csrf=" .. csrf_cookie .. "; idp_session=" .. session_cookie
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    local body = "csrfmiddlewaretoken=" .. urlencode(csrf_token) .. "&login=" .. username ..
      "&password=" .. urlencode(password)
    return wrk.format("POST", location, headers, body)
  else
    headers["Cookie"] = "idp_session=" .. session_cookie
    return wrk.format("GET", location, headers)
  end
end

function on_response(status, headers, body)
  if step == 1 then
    location = headers["Location"]
    session_cookie = cookie(headers, "idp_session")
    if status ~= 302 or not session_cookie or not location
      or not location:find("/accounts/login/", 1, true) then
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
      or not location:find("/saml/sso/continue/", 1, true) then
      return fail(status, headers, body)
    end
    step = 4
  else
    if status ~= 200 or not body:find('name="SAMLResponse"', 1, true) then
      return fail(status, headers, body)
    end
    completed = completed + 1
    begin()
  end
end
