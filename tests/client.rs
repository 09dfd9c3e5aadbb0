//! `stagecoach-client`, the Rust client, against the real daemon: typed
//! calls and notifications as a stream.

use std::time::Duration;

use futures_util::StreamExt;
use stagecoach_client::{Client, ClientError};
use stagecoach_types::api::{ReloadOutcome, methods, params, results};
use stagecoach_types::model::Millis;
use stagecoach_types::protocol::Event;

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
        let Event::ProspectMoved {
            prospect,
            transition,
        } = moved
        else {
            panic!("not a move: {moved:?}");
        };
        assert_eq!(prospect.id, recorded.activity.prospect);
        assert_eq!(transition.to, "connect");

        let reload = c
            .request::<methods::ProcessReload>(&params::ProcessReload::default())
            .await
            .unwrap();
        assert_eq!(reload.outcome, ReloadOutcome::Unchanged);
        assert_eq!(reload.previous, reload.version);

        // Every typed answer reads back as its type: pages of each record kind.
        for (what, expect) in [
            (params::ExportWhat::Prospects, "prospects"),
            (params::ExportWhat::Activities, "activities"),
            (params::ExportWhat::Transitions, "transitions"),
        ] {
            let page = c
                .request::<methods::ExportPage>(&params::ExportPage {
                    what,
                    after: None,
                    limit: None,
                })
                .await
                .unwrap();
            let got = match &page.rows {
                results::ExportRows::Prospects(r) => ("prospects", r.len()),
                results::ExportRows::Activities(r) => ("activities", r.len()),
                results::ExportRows::Transitions(r) => ("transitions", r.len()),
            };
            assert_eq!(got.0, expect, "{page:?}");
            assert!(got.1 >= 1 && page.next.is_none(), "{page:?}");
        }
        let status = c
            .request::<methods::DaemonStatus>(&params::NoParams {})
            .await
            .unwrap();
        assert_eq!(status.counts.expect("counts").prospects, 1);
        let view = c
            .request::<methods::ProspectGet>(&params::ById { id, at: None })
            .await
            .unwrap();
        assert_eq!(view.prospect.stage, "connect");
        assert_eq!(view.transitions.map(|t| t.len()), Some(2));

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
                assert_eq!(e.data.unwrap().stage.as_deref(), Some("nope"));
            }
            other => panic!("{other}"),
        }
    });
}
