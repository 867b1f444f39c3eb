//! A partition's fence (sql/0016, `store::fence`): once a store is taken under an
//! epoch, every write of a session under another epoch — or under none, such as a
//! single-process engine's — is refused, by whatever path; a takeover waits for the
//! former owner's open write and fences it after.

use std::time::{Duration, Instant};

use deltran::domain::cluster::Epoch;
use deltran::store::{fence, Store, StoreError};
use serde_json::json;

use crate::helpers::{inr_to_aed, TestApp};

/// A session on the test's database writing under `epoch` (none: `None`).
async fn session(app: &TestApp, epoch: Option<Epoch>) -> tokio_postgres::Client {
    let mut config = app.database.clone();
    if let Some(epoch) = epoch {
        fence::write_under(&mut config, epoch);
    }
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    actix_web::rt::spawn(connection);
    client
}

/// A store whose every session writes under `epoch`.
fn store_under(app: &TestApp, epoch: Epoch) -> Store {
    let mut config = app.database.clone();
    fence::write_under(&mut config, epoch);
    Store::connect(config, 2)
}

const WRITE: &str = "UPDATE banks SET name = name WHERE code = 'ICICI'";

async fn refused(client: &tokio_postgres::Client) -> bool {
    match client.batch_execute(WRITE).await {
        Ok(()) => false,
        Err(e) => {
            assert_eq!(e.code().map(|c| c.code()), Some("DTF01"), "{e}");
            true
        }
    }
}

#[actix_web::test]
async fn a_taken_store_refuses_every_write_but_its_owner_s() {
    let app = TestApp::spawn().await;
    // Never taken: no fence, and the engine (writing under no epoch) works.
    assert_eq!(app.store.fence().await.unwrap(), None);
    app.submit_accepted(&inr_to_aed(json!("100"))).await;
    let first = store_under(&app, Epoch(1));
    assert_eq!(first.take_partition(Epoch(1)).await.unwrap(), Epoch(0));
    assert_eq!(app.store.fence().await.unwrap(), Some(Epoch(1)));
    // Its owner writes; a session under no epoch or another one does not.
    assert!(!refused(&session(&app, Some(Epoch(1))).await).await);
    assert!(refused(&session(&app, None).await).await);
    assert!(refused(&session(&app, Some(Epoch(2))).await).await);
    // The engine's own writes, its group commit included, are refused: the
    // submission is answered 503, not acknowledged.
    let fenced = app.submit(&inr_to_aed(json!("5"))).await;
    assert_eq!(fenced.status, 503, "{}", fenced.body);
    // Taken over under epoch 2: the first owner is fenced, the second writes.
    let second = store_under(&app, Epoch(2));
    assert_eq!(second.take_partition(Epoch(2)).await.unwrap(), Epoch(1));
    assert!(refused(&session(&app, Some(Epoch(1))).await).await);
    assert!(!refused(&session(&app, Some(Epoch(2))).await).await);
    // The fence never goes down; the same epoch again is a restart.
    assert!(matches!(
        first.take_partition(Epoch(1)).await,
        Err(StoreError::Fenced(_))
    ));
    assert_eq!(second.take_partition(Epoch(2)).await.unwrap(), Epoch(2));
    // A table a later migration adds is fenced once the store is taken again.
    session(&app, Some(Epoch(2)))
        .await
        .batch_execute("CREATE TABLE later_table (id INT)")
        .await
        .unwrap();
    second.take_partition(Epoch(2)).await.unwrap();
    let stale = session(&app, Some(Epoch(1))).await;
    let e = stale
        .batch_execute("INSERT INTO later_table VALUES (1)")
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("DTF01"));
    app.stop().await;
}

#[actix_web::test]
async fn a_takeover_waits_for_the_former_owner_s_open_write_then_fences_it() {
    let app = TestApp::spawn().await;
    store_under(&app, Epoch(1))
        .take_partition(Epoch(1))
        .await
        .unwrap();
    // The first owner's write transaction is open, holding the fence shared.
    let owner = session(&app, Some(Epoch(1))).await;
    owner.batch_execute("BEGIN").await.unwrap();
    owner.batch_execute(WRITE).await.unwrap();
    let next = store_under(&app, Epoch(2));
    let taking = actix_web::rt::spawn(async move { next.take_partition(Epoch(2)).await });
    // The takeover waits on the fence's lock (seen in pg_stat_activity).
    let watcher = session(&app, None).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'
                   AND query LIKE '%deltran_raise_fence%'",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0);
        if waiting == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the takeover never waited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!taking.is_finished());
    // The open write commits (it began under the fence of its time); then the
    // takeover completes, and the former owner's next write is refused.
    owner.batch_execute("COMMIT").await.unwrap();
    assert_eq!(taking.await.unwrap().unwrap(), Epoch(1));
    assert!(refused(&owner).await);
    app.stop().await;
}
