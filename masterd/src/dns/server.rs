//! The DNS server (hickory-server on UDP and TCP): names under the domain answered from the
//! published [`Records`], authoritatively, with NXDOMAIN and the domain's SOA for names that do not
//! exist; other names forwarded to the upstream resolvers (REFUSED when there are none).

use super::records::{fqdn, Records};
use hickory_proto::op::{Message, MessageType, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, NS, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How long one upstream resolver has to answer before the next is tried.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// The records the server answers from, replaced whole when the state changes.
#[derive(Debug, Default)]
pub struct Published(RwLock<Arc<Records>>);

impl Published {
    /// The current records.
    pub fn get(&self) -> Arc<Records> {
        match self.0.read() {
            Ok(r) => r.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replaces the records.
    pub fn set(&self, records: Records) {
        let r = Arc::new(records);
        match self.0.write() {
            Ok(mut w) => *w = r,
            Err(p) => *p.into_inner() = r,
        }
    }
}

/// Answers queries.
pub struct Handler {
    pub records: Arc<Published>,
    pub ttl: u32,
    /// Upstream resolvers for names outside the domain, tried in order.
    pub resolvers: Vec<SocketAddr>,
}

/// What a query is answered with.
struct Answer {
    code: ResponseCode,
    authoritative: bool,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
}

impl Answer {
    fn code(code: ResponseCode) -> Self {
        Answer {
            code,
            authoritative: false,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
        }
    }
}

impl Handler {
    fn soa(&self, domain: &Name) -> Option<Record> {
        let mname = Name::from_ascii(format!("ns1.{domain}")).ok()?;
        let rname = Name::from_ascii(format!("root.ns1.{domain}")).ok()?;
        let serial = (gantry_proto::time::now_secs() as u64 & 0xffff_ffff) as u32;
        let soa = SOA::new(mname, rname, serial, 60, 600, 86400, self.ttl);
        Some(Record::from_rdata(
            domain.clone(),
            self.ttl,
            RData::SOA(soa),
        ))
    }

    fn addr_records(&self, name: &Name, ips: &[IpAddr], qtype: RecordType) -> Vec<Record> {
        ips.iter()
            .filter_map(|ip| match (ip, qtype) {
                (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => Some(RData::A(A(*v4))),
                (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => {
                    Some(RData::AAAA(AAAA(*v6)))
                }
                _ => None,
            })
            .map(|d| Record::from_rdata(name.clone(), self.ttl, d))
            .collect()
    }

    /// The answer from the records, for a name under the domain.
    fn local(&self, records: &Records, name: &Name, qtype: RecordType) -> Answer {
        let key = fqdn(&name.to_ascii());
        let domain = Name::from_ascii(&records.domain).unwrap_or_else(|_| Name::root());
        let mut out = Answer::code(ResponseCode::NoError);
        out.authoritative = true;
        let apex = key == records.domain;
        match records.get(&key) {
            Some(e) => {
                out.answers = self.addr_records(name, &e.ips, qtype);
                if matches!(qtype, RecordType::SRV | RecordType::ANY) {
                    for (target, port) in &e.srv {
                        let Ok(t) = Name::from_ascii(target) else {
                            continue;
                        };
                        let srv = SRV::new(0, 1, *port, t.clone());
                        out.answers.push(Record::from_rdata(
                            name.clone(),
                            self.ttl,
                            RData::SRV(srv),
                        ));
                        if let Some(te) = records.get(target) {
                            for r in self.addr_records(&t, &te.ips, RecordType::ANY) {
                                if !out.additionals.contains(&r) {
                                    out.additionals.push(r);
                                }
                            }
                        }
                    }
                }
            }
            None if apex => {
                if matches!(qtype, RecordType::SOA | RecordType::ANY) {
                    out.answers.extend(self.soa(&domain));
                }
                if matches!(qtype, RecordType::NS | RecordType::ANY) {
                    if let Ok(ns) = Name::from_ascii(format!("ns1.{}", records.domain)) {
                        out.answers.push(Record::from_rdata(
                            name.clone(),
                            self.ttl,
                            RData::NS(NS(ns)),
                        ));
                    }
                }
            }
            None => out.code = ResponseCode::NXDomain,
        }
        if out.answers.is_empty() {
            out.authorities.extend(self.soa(&domain));
        }
        out
    }

    /// The answer of the first upstream resolver that gives one.
    async fn forward(&self, query: &Query, recursion_desired: bool) -> Answer {
        if self.resolvers.is_empty() {
            return Answer::code(ResponseCode::Refused);
        }
        let mut msg = Message::new(rand::random(), MessageType::Query, OpCode::Query);
        msg.metadata.recursion_desired = recursion_desired;
        msg.add_query(query.clone());
        let Ok(bytes) = msg.to_vec() else {
            return Answer::code(ResponseCode::ServFail);
        };
        for upstream in &self.resolvers {
            match ask(*upstream, &bytes, msg.metadata.id).await {
                Ok(reply) => {
                    return Answer {
                        code: reply.metadata.response_code,
                        authoritative: false,
                        answers: reply.answers,
                        authorities: reply.authorities,
                        additionals: reply.additionals,
                    }
                }
                Err(e) => tracing::debug!(%upstream, error = %e, "upstream resolver failed"),
            }
        }
        Answer::code(ResponseCode::ServFail)
    }
}

/// One query to one upstream over UDP.
async fn ask(upstream: SocketAddr, query: &[u8], id: u16) -> std::io::Result<Message> {
    let bind: SocketAddr = if upstream.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = tokio::net::UdpSocket::bind(bind).await?;
    sock.connect(upstream).await?;
    sock.send(query).await?;
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + UPSTREAM_TIMEOUT;
    loop {
        let n = tokio::time::timeout_at(deadline, sock.recv(&mut buf))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer"))??;
        // Anything that does not parse or answers another id is ignored (outside input).
        if let Ok(m) = Message::from_vec(buf.get(..n).unwrap_or_default()) {
            if m.metadata.id == id && m.metadata.message_type == MessageType::Response {
                return Ok(m);
            }
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        let builder = MessageResponseBuilder::from_message_request(request);
        let meta = &request.metadata;
        if meta.op_code != OpCode::Query || meta.message_type != MessageType::Query {
            let msg = builder.error_msg(meta, ResponseCode::NotImp);
            return send(&mut response, msg, request).await;
        }
        let Ok(info) = request.request_info() else {
            let msg = builder.error_msg(meta, ResponseCode::FormErr);
            return send(&mut response, msg, request).await;
        };
        let query = info.query.original().clone();
        let records = self.records.get();
        let answer = if records.in_domain(&query.name().to_ascii()) {
            self.local(&records, query.name(), query.query_type())
        } else {
            self.forward(&query, meta.recursion_desired).await
        };
        let mut out = Metadata::response_from_request(meta);
        out.response_code = answer.code;
        out.authoritative = answer.authoritative;
        out.recursion_available = !self.resolvers.is_empty();
        let msg = builder.build(
            out,
            answer.answers.iter(),
            answer.authorities.iter(),
            std::iter::empty(),
            answer.additionals.iter(),
        );
        send(&mut response, msg, request).await
    }
}

async fn send<'a, R: ResponseHandler>(
    response: &mut R,
    msg: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    request: &Request,
) -> ResponseInfo {
    match response.send_response(msg).await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!(error = %e, "DNS answer not sent");
            let mut meta = Metadata::response_from_request(&request.metadata);
            meta.response_code = ResponseCode::ServFail;
            hickory_proto::op::Header {
                metadata: meta,
                counts: Default::default(),
            }
            .into()
        }
    }
}
