-- POSTs one fixed body read from BODY (and, for binary tensors, sends the
-- JSON header length read from BODY.len) on every request.
local path = os.getenv("BODY")
local f = assert(io.open(path, "rb"))
wrk.body = f:read("*all")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local lf = io.open(path .. ".len", "r")
if lf then
  wrk.headers["Inference-Header-Content-Length"] = lf:read("*all")
  wrk.headers["Content-Type"] = "application/octet-stream"
  lf:close()
end

local non2xx = 0
response = function(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end
