//! The audit: every product rule the stored data can show (docs/ARCHITECTURE.md,
//! "Rules"), recomputed from the transfers themselves. `deltran audit` prints it; tests
//! assert it is clean.

use super::{Store, StoreError};

/// One rule and the rows that break it (empty when it holds).
#[derive(Clone, Debug)]
pub struct Check {
    pub rule: &'static str,
    pub violations: Vec<String>,
}

/// The most violations listed per rule; the rest are counted.
const VIOLATIONS_LISTED_MAX: i64 = 20;

/// When the audit log began: the time migration 0004 was applied. Rows created or
/// changed before it have no entries, and the audit log checks skip them.
macro_rules! audit_since {
    () => {
        "(SELECT applied_at FROM schema_migrations WHERE name = '0004_audit_log')"
    };
}

/// Each rule as a query returning one text row per violation.
const CHECKS: &[(&str, &str)] = &[
    (
        "every accepted transfer is in exactly one existing window; rejected, queued, expired, cancelled and held ones in none",
        "SELECT 'transfer ' || t.id || ' status ' || t.status || ' window ' || coalesce(t.window_id::text, 'none')
           FROM transfers t LEFT JOIN windows w ON w.id = t.window_id
          WHERE (t.status = 'accepted' AND w.id IS NULL)
             OR (t.status <> 'accepted' AND t.window_id IS NOT NULL)",
    ),
    (
        "only a transfer that asked to queue was ever queued, in an existing window's time, and a released one went into that window or a later one",
        "SELECT 'transfer ' || t.id || ' status ' || t.status || ' queued in '
                || coalesce(t.queued_in::text, 'none') || ' priority '
                || coalesce(t.queue_priority, 'none') || ' window '
                || coalesce(t.window_id::text, 'none')
           FROM transfers t LEFT JOIN windows q ON q.id = t.queued_in
          WHERE (t.status IN ('queued', 'expired') AND t.queued_in IS NULL)
             OR (t.queued_in IS NOT NULL AND (t.queue_priority IS NULL OR q.id IS NULL))
             OR (t.queued_in IS NOT NULL AND t.window_id < t.queued_in)",
    ),
    (
        "at most one window is open, and it is the newest",
        "SELECT 'window ' || id || ' is open but window ' || (SELECT max(id) FROM windows) || ' exists'
           FROM windows WHERE state = 'open' AND id <> (SELECT max(id) FROM windows)",
    ),
    (
        "positions equal credits minus debits recomputed from the stored transfers",
        "WITH legs AS (
             SELECT window_id, sender_bank AS bank, from_currency AS currency,
                    amount AS debit, 0::numeric AS credit
               FROM transfers WHERE status = 'accepted'
             UNION ALL
             SELECT window_id, receiver_bank, to_currency, 0, converted_amount
               FROM transfers WHERE status = 'accepted'),
         recomputed AS (
             SELECT l.window_id, bank, currency, sum(debit) AS debits, sum(credit) AS credits
               FROM legs l JOIN windows w ON w.id = l.window_id
              WHERE w.state IN ('netted', 'settled', 'settlement_failed')
              GROUP BY 1, 2, 3)
         SELECT 'window ' || coalesce(r.window_id, p.window_id) || ' ' || coalesce(r.bank, p.bank)
                || ' ' || coalesce(r.currency, p.currency) || ': stored '
                || coalesce(p.position::text, 'nothing') || ', recomputed '
                || coalesce((r.credits - r.debits)::text, 'nothing')
           FROM recomputed r
           FULL JOIN window_positions p
             ON p.window_id = r.window_id AND p.bank = r.bank AND p.currency = r.currency
          WHERE p.position IS DISTINCT FROM r.credits - r.debits
             OR p.debits IS DISTINCT FROM r.debits OR p.credits IS DISTINCT FROM r.credits",
    ),
    (
        "the hub's position is minus the banks' sum, and gross and net match the positions",
        "WITH banks AS (
             SELECT window_id, currency, sum(position) AS total, sum(debits) AS gross,
                    sum(CASE WHEN position < 0 THEN -position ELSE 0 END) AS net
               FROM window_positions GROUP BY 1, 2)
         SELECT 'window ' || c.window_id || ' ' || c.currency || ': hub ' || c.hub_position
                || ', banks ' || coalesce(b.total::text, 'none')
           FROM window_currencies c
           FULL JOIN banks b ON b.window_id = c.window_id AND b.currency = c.currency
          WHERE c.hub_position IS DISTINCT FROM -b.total
             OR c.gross IS DISTINCT FROM b.gross OR c.net IS DISTINCT FROM b.net",
    ),
    (
        "settlement instructions move exactly the positions",
        "WITH moved AS (
             SELECT window_id, currency,
                    CASE WHEN payer = 'HUB' THEN payee ELSE payer END AS bank,
                    sum(CASE WHEN payer = 'HUB' THEN amount ELSE -amount END) AS amount,
                    count(*) AS n
               FROM settlement_instructions GROUP BY 1, 2, 3)
         SELECT 'window ' || coalesce(p.window_id, m.window_id) || ' '
                || coalesce(p.bank, m.bank) || ' ' || coalesce(p.currency, m.currency)
                || ': position ' || coalesce(p.position::text, 'none')
                || ', instructions ' || coalesce(m.amount::text, 'none')
           FROM (SELECT * FROM window_positions WHERE position <> 0) p
           FULL JOIN moved m
             ON m.window_id = p.window_id AND m.bank = p.bank AND m.currency = p.currency
          WHERE p.position IS DISTINCT FROM m.amount OR m.n > 1",
    ),
    (
        "a window's transfer count is its accepted transfers",
        "SELECT 'window ' || w.id || ': count ' || w.transfer_count || ', stored '
                || (SELECT count(*) FROM transfers t WHERE t.window_id = w.id AND t.status = 'accepted')
           FROM windows w
          WHERE w.state IN ('netted', 'settled', 'settlement_failed')
            AND w.transfer_count IS DISTINCT FROM
                (SELECT count(*) FROM transfers t WHERE t.window_id = w.id AND t.status = 'accepted')",
    ),
    // The running sums (sql/0005) that netting and the banks' books start from after
    // a restart: summed over their slots, they are the window's transfers summed.
    (
        "every window's running sums equal its accepted transfers' legs and counts",
        "WITH legs AS (
             SELECT window_id, sender_bank AS bank, from_currency AS currency,
                    amount AS debit, 0::numeric AS credit, 1 AS debit_n, 0 AS credit_n
               FROM transfers WHERE status = 'accepted'
             UNION ALL
             SELECT window_id, receiver_bank, to_currency, 0, converted_amount, 0, 1
               FROM transfers WHERE status = 'accepted'),
         banks_recomputed AS (
             SELECT window_id, bank, currency, sum(debit) AS debits, sum(credit) AS credits,
                    sum(debit_n) AS debit_count, sum(credit_n) AS credit_count
               FROM legs GROUP BY 1, 2, 3),
         banks_stored AS (
             SELECT window_id, bank, currency, sum(debits) AS debits, sum(credits) AS credits,
                    sum(debit_count) AS debit_count, sum(credit_count) AS credit_count
               FROM window_bank_legs GROUP BY 1, 2, 3
             -- a bank whose every leg in the window was cancelled sums to nothing
             HAVING sum(debit_count) <> 0 OR sum(credit_count) <> 0
                 OR sum(debits) <> 0 OR sum(credits) <> 0),
         corridors_recomputed AS (
             SELECT window_id, from_currency, to_currency, sum(amount) AS source,
                    sum(converted_amount) AS destination, count(*) AS n
               FROM transfers WHERE status = 'accepted' GROUP BY 1, 2, 3),
         corridors_stored AS (
             SELECT window_id, from_currency, to_currency, sum(source_amount) AS source,
                    sum(destination_amount) AS destination, sum(transfer_count) AS n
               FROM window_corridor_legs GROUP BY 1, 2, 3
             HAVING sum(transfer_count) <> 0 OR sum(source_amount) <> 0)
         SELECT 'window ' || coalesce(r.window_id, s.window_id) || ' '
                || coalesce(r.bank, s.bank) || ' ' || coalesce(r.currency, s.currency)
                || ': stored debits ' || coalesce(s.debits || ' (' || s.debit_count || ')', 'nothing')
                || ' credits ' || coalesce(s.credits || ' (' || s.credit_count || ')', 'nothing')
                || ', recomputed debits '
                || coalesce(r.debits || ' (' || r.debit_count || ')', 'nothing')
                || ' credits ' || coalesce(r.credits || ' (' || r.credit_count || ')', 'nothing')
           FROM banks_recomputed r
           FULL JOIN banks_stored s
             ON s.window_id = r.window_id AND s.bank = r.bank AND s.currency = r.currency
          WHERE s.debits IS DISTINCT FROM r.debits OR s.credits IS DISTINCT FROM r.credits
             OR s.debit_count IS DISTINCT FROM r.debit_count
             OR s.credit_count IS DISTINCT FROM r.credit_count
         UNION ALL
         SELECT 'window ' || coalesce(r.window_id, s.window_id) || ' corridor '
                || coalesce(r.from_currency, s.from_currency) || '-'
                || coalesce(r.to_currency, s.to_currency)
                || ': stored ' || coalesce(s.source || ' → ' || s.destination || ' (' || s.n || ')', 'nothing')
                || ', recomputed '
                || coalesce(r.source || ' → ' || r.destination || ' (' || r.n || ')', 'nothing')
           FROM corridors_recomputed r
           FULL JOIN corridors_stored s
             ON s.window_id = r.window_id AND s.from_currency = r.from_currency
            AND s.to_currency = r.to_currency
          WHERE s.source IS DISTINCT FROM r.source OR s.destination IS DISTINCT FROM r.destination
             OR s.n IS DISTINCT FROM r.n",
    ),
    (
        "a settled window has every instruction confirmed; a netted one has none failed",
        "SELECT 'window ' || w.id || ' is ' || w.state || ' with an instruction ' || i.state
           FROM windows w JOIN settlement_instructions i ON i.window_id = w.id
          WHERE (w.state = 'settled' AND i.state <> 'confirmed')
             OR (w.state = 'netted' AND i.state = 'failed')",
    ),
    (
        "only netted windows have results",
        "SELECT 'window ' || w.id || ' is ' || w.state || ' but has stored positions'
           FROM windows w
          WHERE w.state IN ('open', 'closing')
            AND EXISTS (SELECT 1 FROM window_positions p WHERE p.window_id = w.id)",
    ),
    // The audit log (store/audit_log.rs): each change has its entry, written in the
    // same transaction, so the entry's `at` (the transaction's now()) equals the time
    // the change stamped on its row. Databases from before the audit log have no
    // entries for their older rows: these checks cover only what was created or
    // changed since migration 0004 was applied (`audit_since!`), which `deltran audit`
    // applies itself before checking.
    (
        "every bank, corridor and key created since the audit log began has its creation entry",
        concat!(
            "SELECT what || ' ' || subject || ' created at ' || created_at || ' has no ' || action || ' entry'
           FROM (SELECT 'bank' AS what, code AS subject, 'bank_created' AS action, created_at
                   FROM banks
                 UNION ALL
                 SELECT 'corridor', from_currency || '-' || to_currency, 'corridor_created', created_at
                   FROM corridors
                 UNION ALL
                 SELECT 'key', replace(id::text, '-', ''), 'key_created', created_at
                   FROM api_keys) c
          WHERE c.created_at >= ",
            audit_since!(),
            "
            AND NOT EXISTS (SELECT 1 FROM audit_log a
                             WHERE a.subject = c.subject AND a.action = c.action
                               AND a.at = c.created_at)",
        ),
    ),
    (
        "every bank and corridor changed since the audit log began has an entry for its latest change",
        concat!(
            "SELECT what || ' ' || subject || ' changed at ' || updated_at || ' has no ' || action || ' entry'
           FROM (SELECT 'bank' AS what, code AS subject, 'bank_changed' AS action,
                        created_at, updated_at
                   FROM banks
                 UNION ALL
                 SELECT 'corridor', from_currency || '-' || to_currency, 'corridor_changed',
                        created_at, updated_at
                   FROM corridors) c
          WHERE c.updated_at > c.created_at AND c.updated_at >= ",
            audit_since!(),
            "
            AND NOT EXISTS (SELECT 1 FROM audit_log a
                             WHERE a.subject = c.subject AND a.action = c.action
                               AND a.at = c.updated_at)",
        ),
    ),
    (
        "every key revoked since the audit log began has its revocation entry",
        concat!(
            "SELECT 'key ' || replace(k.id::text, '-', '') || ' revoked at ' || k.revoked_at
                || ' has no key_revoked entry'
           FROM api_keys k
          WHERE k.revoked_at >= ",
            audit_since!(),
            "
            AND NOT EXISTS (SELECT 1 FROM audit_log a
                             WHERE a.subject = replace(k.id::text, '-', '')
                               AND a.action = 'key_revoked' AND a.at = k.revoked_at)",
        ),
    ),
    (
        "every window closed since the audit log began has its close entry",
        concat!(
            "SELECT 'window ' || w.id || ' closed at ' || w.closed_at || ' has no window_closed entry'
           FROM windows w
          WHERE w.state <> 'open' AND w.closed_at >= ",
            audit_since!(),
            "
            AND NOT EXISTS (SELECT 1 FROM audit_log a
                             WHERE a.subject = w.id::text AND a.action = 'window_closed'
                               AND a.at = w.closed_at)",
        ),
    ),
    (
        "every instruction confirmed or failed since the audit log began has its entry",
        concat!(
            "SELECT 'instruction ' || i.id || ' ' || i.state || ' at ' || i.updated_at
                || ' has no instruction_' || i.state || ' entry'
           FROM settlement_instructions i
          WHERE i.state <> 'pending' AND i.updated_at >= ",
            audit_since!(),
            "
            AND NOT EXISTS (SELECT 1 FROM audit_log a
                             WHERE a.subject = i.id::text AND a.action = 'instruction_' || i.state
                               AND a.at = i.updated_at)",
        ),
    ),
    (
        "every settlement balance equals its funds-in minus its funds-out plus its settlement movements",
        "WITH moved AS (
             SELECT bank, currency,
                    sum(CASE WHEN direction = 'out' THEN -amount ELSE amount END) AS total
               FROM settlement_funds GROUP BY 1, 2)
         SELECT 'bank ' || b.bank || ' ' || b.currency || ': balance ' || b.balance
                || ', movements ' || coalesce(m.total::text, 'none')
           FROM settlement_balances b
           LEFT JOIN moved m ON m.bank = b.bank AND m.currency = b.currency
          WHERE b.balance IS DISTINCT FROM m.total",
    ),
    (
        "every settlement movement is its settled window's position (credits minus debits)",
        "SELECT 'settlement movement ' || f.id || ' window ' || f.window_id || ' ' || f.bank
                || ' ' || f.currency || ': moved ' || f.amount || ', position '
                || coalesce(p.position::text, 'none') || ', window '
                || coalesce(w.state, 'missing')
           FROM settlement_funds f
           LEFT JOIN windows w ON w.id = f.window_id
           LEFT JOIN window_positions p
             ON p.window_id = f.window_id AND p.bank = f.bank AND p.currency = f.currency
          WHERE f.direction = 'settlement'
            AND (w.state IS DISTINCT FROM 'settled' OR p.position IS DISTINCT FROM f.amount)",
    ),
    (
        "every window settled after a settlement balance was made moved it by its position",
        "SELECT 'window ' || p.window_id || ' settled at ' || w.settled_at || ' moved no balance of '
                || p.bank || ' ' || p.currency || ' (prefunded since ' || b.created_at || ')'
           FROM window_positions p
           JOIN windows w ON w.id = p.window_id AND w.state = 'settled'
           JOIN settlement_balances b
             ON b.bank = p.bank AND b.currency = p.currency AND w.settled_at > b.created_at
          WHERE NOT EXISTS (SELECT 1 FROM settlement_funds f
                             WHERE f.direction = 'settlement' AND f.window_id = p.window_id
                               AND f.bank = p.bank AND f.currency = p.currency)",
    ),
    (
        "every funds-in and funds-out has its audit entry",
        "SELECT 'funds movement ' || f.id || ' (' || f.direction || ' ' || f.amount || ' '
                || f.currency || ' of ' || f.bank || ') has no funds_' || f.direction || ' entry'
           FROM settlement_funds f
          WHERE f.direction IN ('in', 'out')
            AND NOT EXISTS (SELECT 1 FROM audit_log a
                             WHERE a.subject = f.bank AND a.action = 'funds_' || f.direction
                               AND a.at = f.created_at
                               AND a.after ->> 'id' = f.id::text)",
    ),
    (
        "every return reverses a stored original that is not itself a return, at its rate, in a later window than it",
        "SELECT 'return ' || r.id || ' of ' || r.return_of || ': '
                || CASE WHEN o.id IS NULL THEN 'no such transfer'
                        ELSE 'original ' || o.sender_bank || '->' || o.receiver_bank || ' '
                             || o.from_currency || '->' || o.to_currency || ' at ' || o.fx_rate
                             || ' in window ' || coalesce(o.window_id::text, 'none')
                             || ' (' || o.status || coalesce(', a return of ' || o.return_of, '')
                             || '), return ' || r.sender_bank || '->' || r.receiver_bank || ' '
                             || r.from_currency || '->' || r.to_currency || ' at ' || r.fx_rate
                             || ' in window ' || coalesce(r.window_id::text, 'none') END
           FROM transfers r LEFT JOIN transfers o ON o.id = r.return_of
          WHERE r.return_of IS NOT NULL
            AND (o.id IS NULL OR o.return_of IS NOT NULL OR o.status <> 'accepted'
                 OR r.sender_bank <> o.receiver_bank OR r.receiver_bank <> o.sender_bank
                 OR r.from_currency <> o.to_currency OR r.to_currency <> o.from_currency
                 OR r.fx_rate IS DISTINCT FROM o.fx_rate
                 OR (r.status = 'accepted' AND r.window_id <= o.window_id))",
    ),
    (
        "a return never exceeds its original: its returns (accepted or queued) take at most what it credited and give back at most what it paid, all of it when they take all",
        "WITH taken AS (
             SELECT return_of, sum(amount) AS amount, sum(converted_amount) AS converted
               FROM transfers
              WHERE return_of IS NOT NULL AND status IN ('accepted', 'queued')
              GROUP BY 1)
         SELECT 'transfer ' || o.id || ' credited ' || o.converted_amount || ' ' || o.to_currency
                || ' and paid ' || o.amount || ' ' || o.from_currency || '; its returns take '
                || t.amount || ' and give back ' || t.converted
           FROM taken t JOIN transfers o ON o.id = t.return_of
          WHERE t.amount > o.converted_amount OR t.converted > o.amount
             OR (t.amount = o.converted_amount AND t.converted <> o.amount)",
    ),
    (
        "every held transfer, and every one compliance rejected, has its screening decision stored (entry, party, score)",
        "SELECT 'transfer ' || id || ' ' || status || coalesce(' ' || reject_code, '')
                || ' has no screening decision'
           FROM transfers
          WHERE (status = 'held' OR reject_code = 'compliance_rejected')
            AND (screening_entry IS NULL OR screening_role IS NULL OR screening_score IS NULL)",
    ),
];

impl Store {
    /// Runs every check against the stored data.
    pub async fn audit(&self) -> Result<Vec<Check>, StoreError> {
        let client = self.client().await?;
        let mut checks = Vec::with_capacity(CHECKS.len());
        for (rule, sql) in CHECKS {
            let total: i64 = client
                .query_one(&format!("SELECT count(*) FROM ({sql}) v"), &[])
                .await?
                .get(0);
            let mut violations: Vec<String> = client
                .query(
                    &format!("SELECT * FROM ({sql}) v LIMIT {VIOLATIONS_LISTED_MAX}"),
                    &[],
                )
                .await?
                .iter()
                .map(|r| r.get::<_, Option<String>>(0).unwrap_or_default())
                .collect();
            if total > VIOLATIONS_LISTED_MAX {
                violations.push(format!("… and {} more", total - VIOLATIONS_LISTED_MAX));
            }
            checks.push(Check { rule, violations });
        }
        Ok(checks)
    }
}
