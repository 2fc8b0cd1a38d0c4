-- Like post.lua, with a fresh Idempotency-Key on every request (unique per
-- run, thread and request), so that every request is a first request.
dofile("bench/wrk/post.lua")

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local prefix, counter = "", 0
function init(args)
  prefix = os.time() .. "-" .. tostring(tid)
end

function request()
  counter = counter + 1
  wrk.headers["Idempotency-Key"] = prefix .. "-" .. counter
  return wrk.format()
end
