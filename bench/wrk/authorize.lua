-- wrk -t1 -c8 -d10s --latency -s bench/wrk/authorize.lua http://127.0.0.1:7070
-- against `strata serve` (see docs/benchmarks.md, issue 8).
-- Random users among 100,000, amounts up to $300; time stamped by the server.
math.randomseed(os.time())
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local body = string.format('{"user_id":"user-%d","amount":"%d.%02d"}', math.random(0, 99999), math.random(0, 299), math.random(0, 99))
  return wrk.format(nil, "/v1/authorize", nil, body)
end
