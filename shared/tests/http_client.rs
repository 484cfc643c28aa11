//! The outbound client against real HTTPS receivers (testkit) on 127.0.0.1.
//!
//! Every test is under `http_client::` so `cargo test -p shared http_client` picks them up.

mod http_client {
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use shared::adapters::http_client::{
        OutboundClient, OutboundConfig, PostOutcome, RESPONSE_BODY_CAP,
    };
    use shared::domain::AttemptErrorKind;
    use testkit::{Behaviour, HttpsReceiver, Reply};

    const USER_AGENT: &str = "AgentVista-Webhooks/test";

    fn loopback() -> Vec<ipnet::IpNet> {
        vec![
            "127.0.0.0/8".parse().expect("net"),
            "::1/128".parse().expect("net"),
        ]
    }

    /// A client that trusts `receiver`'s CA (when given), allows `allowed`, and gives up
    /// after `total`.
    fn client(
        receiver: Option<&HttpsReceiver>,
        allowed: Vec<ipnet::IpNet>,
        total: Duration,
    ) -> OutboundClient {
        let roots: Vec<PathBuf> = receiver
            .map(|r| r.write_ca_pem(std::env::temp_dir()))
            .into_iter()
            .collect();
        let client = OutboundClient::new(OutboundConfig {
            allowed,
            extra_root_certs: roots.clone(),
            constrained_roots: Vec::new(),
            total_timeout: total,
            connect_timeout: Duration::from_secs(2),
            user_agent: USER_AGENT.to_owned(),
        })
        .expect("client builds");
        for root in roots {
            let _ = std::fs::remove_file(root);
        }
        client
    }

    fn kind(outcome: &PostOutcome) -> Option<AttemptErrorKind> {
        outcome.error.as_ref().map(|e| e.kind)
    }

    /// Checks that `outcome` is an answer with `status`, which is a failure.
    fn failed_with_status(outcome: &PostOutcome, status: u16) {
        assert_eq!(outcome.status, Some(status));
        assert_eq!(kind(outcome), Some(AttemptErrorKind::HttpStatus));
    }

    /// Checks that `outcome` failed as `expected` without an answer (no status); the
    /// error's message.
    fn unanswered(outcome: &PostOutcome, expected: AttemptErrorKind) -> &str {
        assert_eq!(kind(outcome), Some(expected), "{outcome:?}");
        assert_eq!(outcome.status, None);
        &outcome.error.as_ref().expect("error").message
    }

    async fn post(client: &OutboundClient, url: &str) -> PostOutcome {
        client
            .post(
                url,
                &[("content-type", "application/json".to_owned())],
                Bytes::from_static(b"{}"),
            )
            .await
    }

    #[tokio::test]
    async fn success_delivers_exact_body_and_headers() {
        let receiver = HttpsReceiver::start(Reply::ok().body("thanks")).await;
        let client = client(Some(&receiver), loopback(), Duration::from_secs(10));
        let body = Bytes::from_static(b"{\"type\":\"order.paid\",\"data\":{\"n\":\"\xc3\xa9\"}}");
        let outcome = client
            .post(
                &receiver.url("/hooks/in?src=avw"),
                &[
                    ("Content-Type", "application/json".to_owned()),
                    ("webhook-id", "msg_1".to_owned()),
                    ("webhook-timestamp", "1700000000".to_owned()),
                    ("webhook-signature", "v1,c2lnbmF0dXJl".to_owned()),
                ],
                body.clone(),
            )
            .await;
        assert_eq!(outcome.status, Some(200));
        assert_eq!(outcome.error, None, "{outcome:?}");
        assert_eq!(outcome.response_body, "thanks");
        assert_eq!(outcome.retry_after, None);
        assert!(outcome.duration > Duration::ZERO);

        let got = receiver.wait_for(1, Duration::from_secs(5)).await;
        assert_eq!(got.len(), 1);
        let request = &got[0];
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/hooks/in?src=avw");
        assert_eq!(request.body, body);
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.header("webhook-id"), Some("msg_1"));
        assert_eq!(request.header("webhook-timestamp"), Some("1700000000"));
        assert_eq!(request.header("webhook-signature"), Some("v1,c2lnbmF0dXJl"));
        assert_eq!(request.header("user-agent"), Some(USER_AGENT));
        assert_eq!(
            request.header("content-length"),
            Some(body.len().to_string().as_str())
        );
    }

    #[tokio::test]
    async fn any_2xx_is_success_and_names_resolve_when_allowed() {
        let receiver = HttpsReceiver::start(Reply::status(204)).await;
        let client = client(Some(&receiver), loopback(), Duration::from_secs(10));
        let outcome = post(&client, &receiver.localhost_url("/by-name")).await;
        assert_eq!(outcome.status, Some(204));
        assert_eq!(outcome.error, None, "{outcome:?}");
        assert_eq!(outcome.response_body, "");
        assert_eq!(receiver.requests().len(), 1);
    }

    #[tokio::test]
    async fn odd_ipv4_spellings_reach_the_same_loopback_when_allowed() {
        let receiver = HttpsReceiver::start(Reply::ok()).await;
        let client = client(Some(&receiver), loopback(), Duration::from_secs(10));
        let port = receiver.port();
        for host in ["2130706433", "0x7f.1", "017700000001", "127.1"] {
            let outcome = post(&client, &format!("https://{host}:{port}/odd")).await;
            assert_eq!(outcome.status, Some(200), "{host}: {outcome:?}");
        }
        assert_eq!(receiver.requests().len(), 4);
    }

    #[tokio::test]
    async fn nothing_allowed_never_reaches_loopback() {
        let receiver = HttpsReceiver::start(Reply::ok()).await;
        let client = client(Some(&receiver), Vec::new(), Duration::from_secs(10));
        let port = receiver.port();
        let urls = [
            receiver.url("/literal"),
            receiver.localhost_url("/by-name"),
            format!("https://2130706433:{port}/"),
            format!("https://0x7f.1:{port}/"),
            format!("https://017700000001:{port}/"),
            format!("https://127.1:{port}/"),
            format!("https://[::ffff:127.0.0.1]:{port}/"),
            format!("https://[::1]:{port}/"),
        ];
        for url in &urls {
            let outcome = post(&client, url).await;
            let message = unanswered(&outcome, AttemptErrorKind::BlockedAddress);
            assert!(message.contains("loopback"), "{url}: {message}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(receiver.requests().is_empty(), "the receiver was reached");
    }

    #[tokio::test]
    async fn other_allowed_ranges_do_not_open_loopback() {
        let receiver = HttpsReceiver::start(Reply::ok()).await;
        let allowed = vec!["10.0.0.0/8".parse().expect("net")];
        let client = client(Some(&receiver), allowed, Duration::from_secs(10));
        let outcome = post(&client, &receiver.localhost_url("/")).await;
        assert_eq!(kind(&outcome), Some(AttemptErrorKind::BlockedAddress));
        assert!(receiver.requests().is_empty());
    }

    #[tokio::test]
    async fn redirects_are_failures_and_not_followed() {
        let receiver = HttpsReceiver::start(Behaviour::from_fn(|request| {
            if request.path == "/start" {
                Reply::status(302).header("Location", "/target")
            } else {
                Reply::ok()
            }
        }))
        .await;
        let client = client(Some(&receiver), loopback(), Duration::from_secs(10));
        for status in [302_u16, 301, 307, 308] {
            if status != 302 {
                let target = receiver.url("/target");
                receiver.set_behaviour(Reply::status(status).header("Location", target));
            }
            let outcome = post(&client, &receiver.url("/start")).await;
            assert_eq!(outcome.status, Some(status));
            assert_eq!(
                kind(&outcome),
                Some(AttemptErrorKind::Redirect),
                "{outcome:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let paths: Vec<_> = receiver.requests().into_iter().map(|r| r.path).collect();
        assert_eq!(paths, ["/start"; 4], "the Location must not be fetched");
    }

    #[tokio::test]
    async fn error_statuses_keep_the_body_up_to_the_cap() {
        let receiver = HttpsReceiver::start(Behaviour::sequence(
            [
                Reply::status(500).body("boom"),
                Reply::status(400).body("a".repeat(10_000)),
                Reply::ok().body("é".repeat(3000)),
            ],
            Reply::status(404),
        ))
        .await;
        let client = client(Some(&receiver), loopback(), Duration::from_secs(10));
        let url = receiver.url("/");

        let outcome = post(&client, &url).await;
        failed_with_status(&outcome, 500);
        assert_eq!(outcome.response_body, "boom");
        let message = &outcome.error.as_ref().expect("error").message;
        assert!(
            !message.contains("boom"),
            "no body in the message: {message}"
        );

        let outcome = post(&client, &url).await;
        assert_eq!(outcome.status, Some(400));
        assert_eq!(outcome.response_body, "a".repeat(RESPONSE_BODY_CAP));

        // 2-byte characters: the cap falls on a boundary, 2048 characters kept.
        let outcome = post(&client, &url).await;
        assert_eq!(outcome.error, None);
        assert_eq!(outcome.response_body.len(), RESPONSE_BODY_CAP);

        let outcome = post(&client, &url).await;
        failed_with_status(&outcome, 404);
    }

    #[tokio::test]
    async fn a_delayed_answer_times_out() {
        let receiver = HttpsReceiver::start(Reply::ok().delay(Duration::from_secs(10))).await;
        let client = client(Some(&receiver), loopback(), Duration::from_secs(1));
        let started = Instant::now();
        let outcome = post(&client, &receiver.url("/slow")).await;
        let took = started.elapsed();
        let message = unanswered(&outcome, AttemptErrorKind::Timeout);
        assert_eq!(message, "no complete answer within 1000 ms");
        assert!(took >= Duration::from_millis(900), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert!(outcome.duration < Duration::from_secs(5));
    }

    /// An endless slow body after a 200: the answer is the status, so this is a success;
    /// the body read stops at the deadline with what arrived.
    #[tokio::test]
    async fn an_endless_slow_body_ends_at_the_deadline() {
        let receiver =
            HttpsReceiver::start(Reply::ok().endless_body("tick\n", Duration::from_millis(100)))
                .await;
        let client = client(Some(&receiver), loopback(), Duration::from_secs(1));
        let started = Instant::now();
        let outcome = post(&client, &receiver.url("/endless")).await;
        let took = started.elapsed();
        assert_eq!(outcome.status, Some(200));
        assert_eq!(outcome.error, None, "{outcome:?}");
        assert!(outcome.response_body.starts_with("tick\n"));
        assert!(outcome.response_body.len() < RESPONSE_BODY_CAP);
        assert!(took >= Duration::from_millis(900), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");

        // The same after an error status: an http_status failure with the partial body.
        receiver
            .set_behaviour(Reply::status(503).endless_body("wait\n", Duration::from_millis(100)));
        let started = Instant::now();
        let outcome = post(&client, &receiver.url("/endless")).await;
        assert_eq!(kind(&outcome), Some(AttemptErrorKind::HttpStatus));
        assert!(outcome.response_body.starts_with("wait\n"));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn an_endless_fast_body_stops_at_the_cap() {
        let receiver =
            HttpsReceiver::start(Reply::ok().endless_body("z".repeat(1000), Duration::ZERO)).await;
        let client = client(Some(&receiver), loopback(), Duration::from_secs(10));
        let started = Instant::now();
        let outcome = post(&client, &receiver.url("/firehose")).await;
        assert_eq!(outcome.error, None, "{outcome:?}");
        assert_eq!(outcome.response_body, "z".repeat(RESPONSE_BODY_CAP));
        // Stopped at the cap, well before the 10 s deadline.
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn an_untrusted_certificate_is_tls() {
        let receiver = HttpsReceiver::start(Reply::ok()).await;
        let client = client(None, loopback(), Duration::from_secs(10));
        let outcome = post(&client, &receiver.url("/")).await;
        let message = unanswered(&outcome, AttemptErrorKind::Tls);
        assert_eq!(
            message,
            "TLS: certificate issued by an authority that is not trusted"
        );
        assert!(receiver.requests().is_empty());
    }

    /// A receiver's own self-signed certificate marked `CA:TRUE` (what `openssl req -x509`
    /// makes by default): trusted once given, for that exact certificate only.
    #[tokio::test]
    async fn a_self_signed_ca_certificate_is_pinned() {
        let ca = testkit::TestCa::self_signed();
        let receiver = HttpsReceiver::start_with_ca(&ca, Reply::ok()).await;
        let trusting = client(Some(&receiver), loopback(), Duration::from_secs(10));
        for url in [receiver.url("/a"), receiver.localhost_url("/b")] {
            let outcome = post(&trusting, &url).await;
            assert_eq!(outcome.status, Some(200), "{url}: {outcome:?}");
            assert!(outcome.error.is_none(), "{outcome:?}");
        }
        let stranger = client(None, loopback(), Duration::from_secs(10));
        assert_eq!(
            kind(&post(&stranger, &receiver.url("/")).await),
            Some(AttemptErrorKind::Tls),
            "not trusted unless given"
        );
        // Another self-signed certificate is not the pinned one.
        let other =
            HttpsReceiver::start_with_ca(&testkit::TestCa::self_signed(), Reply::ok()).await;
        assert_eq!(
            kind(&post(&trusting, &other.url("/")).await),
            Some(AttemptErrorKind::Tls)
        );
        assert_eq!(receiver.requests().len(), 2);
        assert!(other.requests().is_empty());
    }

    /// The certificate the README's `openssl` one-liner makes, exactly as a newcomer runs
    /// it, and a leaf signed by a separate CA (as mkcert makes) both work.
    #[tokio::test]
    async fn the_readme_certificates_work() {
        let dir = std::env::temp_dir().join(format!("avw-openssl-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let status = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "receiver-key.pem",
                "-out",
                "receiver-cert.pem",
                "-days",
                "30",
                "-subj",
                "/CN=localhost",
            ])
            .current_dir(&dir)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("the openssl command is installed");
        assert!(status.success());
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("openssl output");
        let served =
            testkit::TestCa::from_pem(&read("receiver-cert.pem"), &read("receiver-key.pem"));
        let receiver = HttpsReceiver::start_with_ca(&served, Reply::ok()).await;
        let pinned = OutboundClient::new(OutboundConfig {
            allowed: loopback(),
            extra_root_certs: vec![dir.join("receiver-cert.pem")],
            constrained_roots: Vec::new(),
            total_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            user_agent: USER_AGENT.to_owned(),
        })
        .expect("client builds");
        let _ = std::fs::remove_dir_all(&dir);
        for url in [receiver.localhost_url("/hook"), receiver.url("/hook")] {
            let outcome = post(&pinned, &url).await;
            assert_eq!(outcome.status, Some(200), "{url}: {outcome:?}");
        }
        // A chain: the CA is given, the server presents a leaf it signed.
        let chained = HttpsReceiver::start(Reply::ok()).await;
        let trusting = client(Some(&chained), loopback(), Duration::from_secs(10));
        let outcome = post(&trusting, &chained.localhost_url("/hook")).await;
        assert_eq!(outcome.status, Some(200), "{outcome:?}");
    }

    #[tokio::test]
    async fn a_refused_port_is_connect() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr").port()
        };
        let client = client(None, loopback(), Duration::from_secs(10));
        let outcome = post(&client, &format!("https://127.0.0.1:{port}/")).await;
        let message = unanswered(&outcome, AttemptErrorKind::Connect);
        assert_eq!(message, "connection refused");
    }

    #[tokio::test]
    async fn an_unknown_name_is_dns() {
        let client = client(None, Vec::new(), Duration::from_secs(20));
        let outcome = post(&client, "https://no-such-host.invalid/hook").await;
        assert_eq!(kind(&outcome), Some(AttemptErrorKind::Dns), "{outcome:?}");
    }

    #[tokio::test]
    async fn only_https_is_sent() {
        let client = client(None, loopback(), Duration::from_secs(10));
        let outcome = post(&client, "http://127.0.0.1:9/").await;
        assert_eq!(kind(&outcome), Some(AttemptErrorKind::Connect));
        let outcome = post(&client, "not a url").await;
        assert_eq!(kind(&outcome), Some(AttemptErrorKind::Connect));
    }

    #[tokio::test]
    async fn retry_after_in_seconds_and_as_a_date() {
        let in_an_hour = (chrono::Utc::now() + chrono::TimeDelta::hours(1))
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let receiver = HttpsReceiver::start(Behaviour::sequence(
            [
                Reply::status(429).header("Retry-After", "120"),
                Reply::status(503).header("Retry-After", in_an_hour),
                Reply::ok().header("Retry-After", "5"),
                Reply::status(503).header("Retry-After", "later"),
            ],
            Reply::ok(),
        ))
        .await;
        let client = client(Some(&receiver), loopback(), Duration::from_secs(10));
        let url = receiver.url("/");

        let outcome = post(&client, &url).await;
        failed_with_status(&outcome, 429);
        assert_eq!(outcome.retry_after, Some(Duration::from_secs(120)));

        let outcome = post(&client, &url).await;
        let wait = outcome.retry_after.expect("a date parses");
        assert!(
            wait > Duration::from_secs(3500) && wait <= Duration::from_secs(3600),
            "{wait:?}"
        );

        let outcome = post(&client, &url).await;
        assert_eq!(
            outcome.retry_after,
            Some(Duration::from_secs(5)),
            "any status"
        );

        let outcome = post(&client, &url).await;
        assert_eq!(outcome.retry_after, None);
    }
}
