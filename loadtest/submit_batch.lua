-- wrk script: POST batches of transfers (`POST /api/v1/transfers/batch`), each batch
-- from one sender bank (round robin over the reference corridor's flows), every
-- transfer with its own idempotency key, and count the transfers each answer says
-- succeeded (202) and failed.
--   BATCH=1000 wrk -t2 -c16 -d20s -s loadtest/submit_batch.lua http://127.0.0.1:8080
-- BATCH (environment): transfers per batch (1000). ANSWER: `brief` asks for the brief
-- answer (`?answer=brief`: what the engine decided of each transfer), `full` (the
-- default) for each transfer as stored. RUN_ID prefixes every key, so a
-- run's transfers can be counted in the database afterwards. DELTRAN_KEY is the key
-- sent as `Authorization: Bearer …`; DELTRAN_KEYS_FILE (an engine's api-keys file)
-- sends each batch with its sender bank's own key instead, as banks would.

local run_id = os.getenv("RUN_ID") or tostring(os.time())
local batch = tonumber(os.getenv("BATCH") or "1000")
local path = "/api/v1/transfers/batch"
if os.getenv("ANSWER") == "brief" then
  path = path .. "?answer=brief"
end

local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_common.lua")
local pairs_ = common.flows
setup = common.setup

function init(args)
  counter = 0
  requests = 0
  succeeded = 0
  failed = 0
  refused = 0
  other = 0
  headers_by_bank = common.init_requests()
end

function request()
  requests = requests + 1
  local p = pairs_[(requests % #pairs_) + 1]
  local items = {}
  -- Concatenation, not string.format: LuaJIT compiles the one and interprets the
  -- other, and this loop is most of the load generator's work (its CPU is taken
  -- from the engine's two cores).
  local head = '{"sender_bank":"' .. p[1] .. '","receiver_bank":"' .. p[2] .. '","amount":"'
  local middle = '","from_currency":"' .. p[3] .. '","to_currency":"' .. p[4]
    .. '","idempotency_key":"' .. run_id .. '-' .. id .. '-'
  for i = 1, batch do
    counter = counter + 1
    local cents = counter % 100
    items[i] = head .. (100 + counter % 900) .. (cents < 10 and '.0' or '.') .. cents
      .. middle .. counter .. '"}'
  end
  local body = '{"transfers":[' .. table.concat(items, ",") .. ']}'
  local headers = headers_by_bank and headers_by_bank[p[1]] or nil
  return wrk.format(nil, path, headers, body)
end

function response(status, headers, body)
  if status == 200 then
    local s = body:match('"succeeded":(%d+)')
    local f = body:match('"failed":(%d+)')
    succeeded = succeeded + (tonumber(s) or 0)
    failed = failed + (tonumber(f) or 0)
  elseif status == 503 then
    refused = refused + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local s, f, r, x = 0, 0, 0, 0
  for _, t in ipairs(common.threads) do
    s = s + t:get("succeeded")
    f = f + t:get("failed")
    r = r + t:get("refused")
    x = x + t:get("other")
  end
  local seconds = summary.duration / 1e6
  io.write(string.format("batches=%d transfers_succeeded=%d transfers_failed=%d batches_refused=%d batches_other=%d\n",
    summary.requests, s, f, r, x))
  io.write(string.format("acknowledged_per_second=%.0f\n", s / seconds))
  for _, p in ipairs({ 50, 90, 99 }) do
    io.write(string.format("batch_latency_p%s_ms=%.2f\n", p, latency:percentile(p) / 1000))
  end
  local e = summary.errors
  io.write(string.format("socket_errors connect=%d read=%d write=%d timeout=%d\n",
    e.connect, e.read, e.write, e.timeout))
end
