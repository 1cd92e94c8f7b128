//! DNS helpers for the whole-cluster DNS tests: a resolver client (hickory-net's `Client`, over UDP
//! or TCP) and a tiny upstream DNS server (hickory-server) that knows one name.
#![allow(dead_code)]

use hickory_net::client::{Client, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::{DnsResponse, Metadata, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// A client of the DNS server at `addr` over UDP.
pub fn udp_client(addr: SocketAddr) -> Client<TokioRuntimeProvider> {
    let conn = UdpClientStream::builder(addr, TokioRuntimeProvider::default())
        .with_timeout(Some(Duration::from_secs(2)))
        .build();
    let (client, bg) = Client::<TokioRuntimeProvider>::from_sender(conn);
    tokio::spawn(bg);
    client
}

/// A client of the DNS server at `addr` over TCP.
pub async fn tcp_client(addr: SocketAddr) -> Client<TokioRuntimeProvider> {
    let (stream, sender) = TcpClientStream::new(
        addr,
        None,
        Some(Duration::from_secs(2)),
        TokioRuntimeProvider::new(),
    );
    let stream = stream.await.expect("TCP connection to the DNS server");
    let (client, bg) = Client::<TokioRuntimeProvider>::new(stream, sender);
    tokio::spawn(bg);
    client
}

/// One query.
pub async fn query(
    client: &mut Client<TokioRuntimeProvider>,
    name: &str,
    rtype: RecordType,
) -> DnsResponse {
    let name = Name::from_ascii(name).expect("a valid name");
    client
        .query(name, DNSClass::IN, rtype)
        .await
        .expect("the DNS server answers")
}

/// The A addresses of an answer.
pub fn a_ips(r: &DnsResponse) -> Vec<String> {
    r.answers
        .iter()
        .filter_map(|rec| match &rec.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}

/// The SRV (target, port) pairs of an answer, sorted.
pub fn srv(r: &DnsResponse) -> Vec<(String, u16)> {
    let mut v: Vec<(String, u16)> = r
        .answers
        .iter()
        .filter_map(|rec| match &rec.data {
            RData::SRV(s) => Some((s.target.to_ascii().to_lowercase(), s.port)),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

/// The response code.
pub fn code(r: &DnsResponse) -> ResponseCode {
    r.metadata.response_code
}

/// The name the test upstream knows, and its address.
pub const UPSTREAM_NAME: &str = "outside.example.";
pub const UPSTREAM_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);

struct Upstream;

#[async_trait::async_trait]
impl RequestHandler for Upstream {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        let builder = MessageResponseBuilder::from_message_request(request);
        let mut meta = Metadata::response_from_request(&request.metadata);
        let known = request.request_info().ok().and_then(|i| {
            let q = i.query.original();
            (q.name().to_ascii().eq_ignore_ascii_case(UPSTREAM_NAME)
                && q.query_type() == RecordType::A)
                .then(|| q.name().clone())
        });
        let answers: Vec<Record> = known
            .iter()
            .map(|n| Record::from_rdata(n.clone(), 30, RData::A(A(UPSTREAM_IP))))
            .collect();
        if answers.is_empty() {
            meta.response_code = ResponseCode::NXDomain;
        }
        let msg = builder.build(
            meta,
            answers.iter(),
            std::iter::empty(),
            std::iter::empty(),
            std::iter::empty(),
        );
        response
            .send_response(msg)
            .await
            .expect("the upstream answers")
    }
}

/// Starts the upstream on a free loopback UDP port; it runs until the test's runtime ends.
pub async fn start_upstream() -> SocketAddr {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind the upstream");
    let addr = sock.local_addr().expect("upstream address");
    let mut server = hickory_server::Server::new(Upstream);
    server.register_socket(sock);
    tokio::spawn(async move { server.block_until_done().await });
    addr
}
