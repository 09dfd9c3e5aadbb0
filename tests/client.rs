//! `stagecoach-client`, the Rust client, against the real daemon: typed
//! calls and notifications as a stream.

use std::time::Duration;

use futures_util::StreamExt;
use stagecoach_client::{Client, ClientError};
use stagecoach_types::api::{ReloadOutcome, methods, params};
use stagecoach_types::model::Millis;

use crate::support::Daemon;

#[test]
fn typed_calls_and_a_stream_of_notifications() {
    let d = Daemon::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = Client::connect(&d.socket).await.unwrap();
        let mut events = Client::connect(&d.socket)
            .await
            .unwrap()
            .subscribe()
            .await
            .unwrap();
        let created = c
            .request::<methods::ProspectCreate>(&params::NewProspect {
                name: "Ada".into(),
                owner: Some("maria".into()),
                at: Some(Millis::parse("2026-07-01").unwrap()),
                ..Default::default()
            })
            .await
            .unwrap();
        let id = created.prospect.id;
        assert_eq!(created.moves[0].to, "prospect");
        let recorded = c
            .request::<methods::ActivityRecord>(&params::NewActivity {
                prospect: id,
                kind: "replied".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(recorded.stage, "connect");
        assert_eq!(recorded.moves[0].activity, Some(recorded.activity.id));
        let moved = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("a notification")
            .unwrap()
            .unwrap();
        assert_eq!(moved.method, "prospect.moved");
        assert_eq!(moved.params["transition"]["to"], "connect");

        let reload = c
            .request::<methods::ProcessReload>(&params::ProcessReload::default())
            .await
            .unwrap();
        assert_eq!(reload.outcome, ReloadOutcome::Unchanged);
        assert_eq!(reload.previous, reload.version);

        // A refusal is typed too, with the daemon's code and data.
        let e = c
            .request::<methods::MetricsFlow>(&params::Period {
                from: Millis::parse("2026-07-01").unwrap(),
                to: Millis::parse("2026-08-01").unwrap(),
                stage: Some("nope".into()),
                ..Default::default()
            })
            .await
            .unwrap_err();
        match e {
            ClientError::Rpc(e) => {
                assert_eq!(e.code, -32602);
                assert_eq!(e.data.unwrap()["stage"], "nope");
            }
            other => panic!("{other}"),
        }
    });
}
