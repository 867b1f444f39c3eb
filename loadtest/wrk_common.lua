-- What the wrk scripts share (loadtest/submit.lua, loadtest/submit_batch.lua), each
-- loading it from beside itself with dofile: the reference corridor's flows, the
-- threads kept for `done`, and the engine's keys.

local common = {}

-- Sender, receiver, from and to currency of each flow.
common.flows = {
  { "ICICI", "ENBD", "INR", "AED" },
  { "HDFC", "ADCB", "INR", "AED" },
  { "AXIS", "ENBD", "INR", "AED" },
  { "ENBD", "ICICI", "AED", "INR" },
  { "ADCB", "HDFC", "AED", "INR" },
}

-- Every thread, for `done` to add up their counts.
common.threads = {}
local thread_id = 0

-- wrk's `setup`: each thread gets its id (part of every idempotency key) and is kept.
function common.setup(thread)
  thread:set("id", thread_id)
  thread_id = thread_id + 1
  table.insert(common.threads, thread)
end

-- For a thread's `init`: JSON POSTs, with DELTRAN_KEY as `Authorization: Bearer …`
-- when it is set. Answers one header set per sender bank, made once from the `bank
-- CODE KEY` lines of DELTRAN_KEYS_FILE (an engine's api-keys file), or nil without it.
function common.init_requests()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  local api_key = os.getenv("DELTRAN_KEY")
  if api_key and api_key ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. api_key
  end
  local keys_file = os.getenv("DELTRAN_KEYS_FILE")
  if not keys_file or keys_file == "" then
    return nil
  end
  local by_bank = {}
  for line in io.lines(keys_file) do
    local role, bank, key = line:match("^(%S+)%s+(%S+)%s+(%S+)$")
    if role == "bank" then
      by_bank[bank] = {
        ["Content-Type"] = "application/json",
        ["Authorization"] = "Bearer " .. key,
      }
    end
  end
  return by_bank
end

return common
