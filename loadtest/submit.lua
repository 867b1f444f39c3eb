-- wrk script: POST single transfers with unique idempotency keys, spread over the
-- reference corridor's banks, and count the answers by status.
--   wrk -t2 -c256 -d20s -s loadtest/submit.lua http://127.0.0.1:8080
-- RUN_ID (environment) prefixes every key so a run's transfers can be counted in
-- the database afterwards: idempotency_key LIKE 'RUN_ID-%'.
-- DELTRAN_KEY (environment) is the API key sent as `Authorization: Bearer …`
-- (loadtest/common.sh exports the engine's operator key); without it the engine
-- answers 401, counted as `other`. DELTRAN_KEYS_FILE (an engine's api-keys file)
-- instead sends each transfer with its sender bank's own key, as banks would.
-- PARTIES=1 (environment) names a debtor and a creditor in every transfer (from a
-- pool of ordinary business names), so that compliance screening has work to do
-- (loadtest/screening_bench.sh).

local run_id = os.getenv("RUN_ID") or tostring(os.time())
local with_parties = os.getenv("PARTIES") == "1"
local firsts = { "Asha", "Ravi", "Meera", "Anil", "Priya", "Sunil", "Kavita", "Farhan", "Layla",
  "Omar", "Noura", "Khalid", "Zainab", "Yusuf", "Samir", "Hana" }
local lasts = { "Mehta", "Sharma", "Gupta", "Kapoor", "Reddy", "Nair", "Iyer", "Haddad", "Mansour",
  "Qasim", "Saleh", "Darwish", "Khoury", "Nasser", "Aziz" }
local trades = { "Traders", "Exports", "Textiles", "Spices", "Logistics", "Foods", "Metals" }
local function party_name(n)
  return string.format("%s %s %s", firsts[(n % #firsts) + 1], lasts[(math.floor(n / 7) % #lasts) + 1],
    trades[(math.floor(n / 3) % #trades) + 1])
end

local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_common.lua")
local pairs_ = common.flows
setup = common.setup

function init(args)
  counter = 0
  accepted = 0
  rejected = 0
  overloaded = 0
  other = 0
  headers_by_bank = common.init_requests()
end

function request()
  counter = counter + 1
  local p = pairs_[(counter % #pairs_) + 1]
  local amount = string.format("%d.%02d", 100 + (counter % 900), counter % 100)
  local parties = ""
  if with_parties then
    parties = string.format(',"debtor":{"name":"%s","country":"IN"},"creditor":{"name":"%s","country":"AE"}',
      party_name(counter), party_name(counter * 31 + 5))
  end
  local body = string.format(
    '{"sender_bank":"%s","receiver_bank":"%s","amount":"%s","from_currency":"%s","to_currency":"%s","idempotency_key":"%s-%d-%d"%s}',
    p[1], p[2], amount, p[3], p[4], run_id, id, counter, parties)
  local headers = headers_by_bank and headers_by_bank[p[1]] or nil
  return wrk.format(nil, "/api/v1/transfers", headers, body)
end

function response(status, headers, body)
  if status == 202 then
    accepted = accepted + 1
  elseif status == 422 then
    rejected = rejected + 1
  elseif status == 503 then
    overloaded = overloaded + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local a, r, o, x = 0, 0, 0, 0
  for _, t in ipairs(common.threads) do
    a = a + t:get("accepted")
    r = r + t:get("rejected")
    o = o + t:get("overloaded")
    x = x + t:get("other")
  end
  local seconds = summary.duration / 1e6
  io.write(string.format("accepted=%d rejected=%d unavailable=%d other=%d\n", a, r, o, x))
  io.write(string.format("acknowledged_per_second=%.0f\n", a / seconds))
  for _, p in ipairs({ 50, 90, 99, 99.9 }) do
    io.write(string.format("latency_p%s_ms=%.2f\n", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("latency_max_ms=%.2f\n", latency.max / 1000))
  local e = summary.errors
  io.write(string.format("socket_errors connect=%d read=%d write=%d timeout=%d\n",
    e.connect, e.read, e.write, e.timeout))
end
