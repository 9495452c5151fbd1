//! Races the database settles: one default per type, one winner per etag.

use crate::support::*;
use credentials_proto::credentials::v1 as pb;
use tonic::Code;

#[tokio::test]
async fn twenty_concurrent_set_defaults_leave_exactly_one() {
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);
    let mut m = stack.management();
    let mut ids = Vec::new();
    for i in 0..20 {
        let c = m
            .create_credential(authed(
                create(
                    &format!("key {i}"),
                    "anthropic",
                    secret("sk-ant-0123456789abcdefghij"),
                ),
                &token,
            ))
            .await
            .unwrap()
            .into_inner()
            .credential
            .unwrap();
        ids.push(c.id);
    }
    let calls = ids.iter().map(|id| {
        let mut m = m.clone();
        let request = authed(
            pb::SetDefaultCredentialRequest {
                id: id.clone(),
                ..Default::default()
            },
            &token,
        );
        tokio::spawn(async move { m.set_default_credential(request).await })
    });
    for call in calls.collect::<Vec<_>>() {
        call.await.unwrap().unwrap();
    }
    let listed = m
        .list_credentials(authed(
            pb::ListCredentialsRequest {
                page_size: 100,
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed.credentials.iter().filter(|c| c.is_default).count(),
        1
    );
    let client = stack.db.client().await;
    let defaults: i64 = client
        .query_one(
            "SELECT count(*) FROM credentials WHERE is_default AND type_id = 'anthropic'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(defaults, 1);
}

#[tokio::test]
async fn of_two_updates_with_one_etag_exactly_one_wins() {
    let stack = TestApi::start().await;
    let token = stack.token(&["ws"], ALL);
    let mut m = stack.management();
    let c = m
        .create_credential(authed(
            create("k", "openai", secret("sk-0123456789abcdefghijklmn")),
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    let update = |n: &str| {
        let mut m = m.clone();
        let request = authed(
            pb::UpdateCredentialRequest {
                id: c.id.clone(),
                etag: c.etag.clone(),
                value: secret(&format!("sk-racer-{n}-0123456789abcdef")),
                ..Default::default()
            },
            &token,
        );
        tokio::spawn(async move { m.update_credential(request).await })
    };
    let (first, second) = (update("one"), update("two"));
    let results = [first.await.unwrap(), second.await.unwrap()];
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{results:?}");
    let loser = results.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert_eq!(loser.code(), Code::Aborted);
    let winner = results
        .iter()
        .find_map(|r| r.as_ref().ok())
        .unwrap()
        .get_ref()
        .credential
        .clone()
        .unwrap();
    assert_eq!(winner.etag, "v2");
    // The stored value is the winner's.
    let got = stack
        .access()
        .access_credential(authed(by_id(&c.id), &token))
        .await
        .unwrap()
        .into_inner();
    assert!(
        winner
            .masked_content
            .ends_with(&got.secret[got.secret.len() - 4..])
    );
}
