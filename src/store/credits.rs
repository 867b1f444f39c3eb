//! Credit legs between partitions (sql/0017, cluster mode): the outbox of the legs
//! this partition owes others, filled by triggers in the statement that commits their
//! transfers, and the legs other partitions' transfers credited to this partition's
//! banks, applied once each.

use rust_decimal::Decimal;
use uuid::Uuid;

use super::decode::{bank_code, currency, window_id};
use super::{Store, StoreError};
use crate::domain::cluster::{CreditLeg, Epoch, PartitionId};
use crate::domain::{BankCode, Currency, TransferId, WindowId};

/// One leg the outbox holds, and the partition it goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwedLeg {
    pub to: PartitionId,
    pub leg: CreditLeg,
}

/// A receiver's applied credits of one window in one currency (reversals taken off).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedCredits {
    pub receiver: BankCode,
    pub currency: Currency,
    pub amount: Decimal,
    pub legs: i64,
}

impl Store {
    /// Cluster mode: the banks of other partitions (`remote`, replacing what was
    /// there), and the triggers that put the legs owed to them into the outbox in
    /// the statement that commits their transfers. Run under the partition's epoch,
    /// after the store is taken.
    pub async fn enable_credit_outbox(
        &self,
        remote: &[(BankCode, PartitionId)],
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.batch_execute("DELETE FROM remote_banks").await?;
        let banks: Vec<&str> = remote.iter().map(|(b, _)| b.as_str()).collect();
        let partitions: Vec<i32> = remote.iter().map(|(_, p)| p.0 as i32).collect();
        tx.execute(
            "INSERT INTO remote_banks (bank, partition) SELECT * FROM unnest($1::text[], $2::int[])",
            &[&banks, &partitions],
        )
        .await?;
        tx.batch_execute(
            "CREATE OR REPLACE TRIGGER deltran_outbox_insert AFTER INSERT ON transfers
                 REFERENCING NEW TABLE AS new_rows
                 FOR EACH STATEMENT EXECUTE FUNCTION deltran_outbox_inserted();
             CREATE OR REPLACE TRIGGER deltran_outbox_update AFTER UPDATE ON transfers
                 REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                 FOR EACH STATEMENT EXECUTE FUNCTION deltran_outbox_updated();",
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The oldest `limit` legs the outbox holds.
    pub async fn owed_legs(
        &self,
        limit: i64,
        from: PartitionId,
        epoch: Epoch,
    ) -> Result<Vec<OwedLeg>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT transfer_id, reversal, receiver, currency, amount, window_id, partition
                   FROM credit_outbox ORDER BY committed_at, transfer_id LIMIT $1",
                &[&limit],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let magnitude: Decimal = row.get("amount");
                let reversal: bool = row.get("reversal");
                Ok(OwedLeg {
                    to: PartitionId(row.get::<_, i32>("partition") as u32),
                    leg: CreditLeg {
                        transfer: TransferId::from_uuid(row.get("transfer_id")),
                        receiver: bank_code(row.get("receiver"))?,
                        currency: currency(row.get("currency"))?,
                        amount: if reversal { -magnitude } else { magnitude },
                        window: window_id(row.get("window_id"))?,
                        from,
                        epoch,
                    },
                })
            })
            .collect()
    }

    /// The log acknowledged these legs: they are no longer owed.
    pub async fn legs_published(&self, legs: &[&CreditLeg]) -> Result<(), StoreError> {
        let client = self.client().await?;
        let ids: Vec<Uuid> = legs.iter().map(|l| l.transfer.as_uuid()).collect();
        let reversals: Vec<bool> = legs.iter().map(|l| l.amount.is_sign_negative()).collect();
        client
            .execute(
                "DELETE FROM credit_outbox o USING unnest($1::uuid[], $2::bool[]) AS a(id, rev)
                  WHERE o.transfer_id = a.id AND o.reversal = a.rev",
                &[&ids, &reversals],
            )
            .await?;
        Ok(())
    }

    /// How many legs the outbox holds.
    pub async fn owed_leg_count(&self) -> Result<i64, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query_one("SELECT count(*) FROM credit_outbox", &[])
            .await?
            .get(0))
    }

    /// Applies legs delivered to this partition, once each (a leg applied before is
    /// left as it is). Returns how many were new.
    pub async fn apply_credit_legs(&self, legs: &[CreditLeg]) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let ids: Vec<Uuid> = legs.iter().map(|l| l.transfer.as_uuid()).collect();
        let reversals: Vec<bool> = legs.iter().map(|l| l.amount.is_sign_negative()).collect();
        let receivers: Vec<&str> = legs.iter().map(|l| l.receiver.as_str()).collect();
        let currencies: Vec<&str> = legs.iter().map(|l| l.currency.as_str()).collect();
        let amounts: Vec<Decimal> = legs.iter().map(|l| l.amount.abs()).collect();
        let windows: Vec<i64> = legs.iter().map(|l| l.window.get()).collect();
        let froms: Vec<i32> = legs.iter().map(|l| l.from.0 as i32).collect();
        let epochs: Vec<i64> = legs.iter().map(|l| l.epoch.0 as i64).collect();
        Ok(client
            .execute(
                "INSERT INTO applied_credits
                     (transfer_id, reversal, receiver, currency, amount, window_id,
                      from_partition, epoch)
                 SELECT * FROM unnest($1::uuid[], $2::bool[], $3::text[], $4::text[],
                                      $5::numeric[], $6::int8[], $7::int[], $8::int8[])
                 ON CONFLICT DO NOTHING",
                &[
                    &ids,
                    &reversals,
                    &receivers,
                    &currencies,
                    &amounts,
                    &windows,
                    &froms,
                    &epochs,
                ],
            )
            .await?)
    }

    /// The credits other partitions' transfers of `window` brought this partition's
    /// banks, per receiver and currency (reversals taken off).
    pub async fn applied_credits(
        &self,
        window: WindowId,
    ) -> Result<Vec<AppliedCredits>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT receiver, currency,
                        sum(CASE WHEN reversal THEN -amount ELSE amount END) AS amount,
                        count(*) AS legs
                   FROM applied_credits WHERE window_id = $1
                  GROUP BY receiver, currency ORDER BY receiver, currency",
                &[&window.get()],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(AppliedCredits {
                    receiver: bank_code(row.get("receiver"))?,
                    currency: currency(row.get("currency"))?,
                    amount: row.get("amount"),
                    legs: row.get("legs"),
                })
            })
            .collect()
    }
}
