//! A reader of Marathon's `/v2/events` stream (server-sent events): bytes in, the event type of
//! each complete frame out. Lines may end in LF or CRLF (Jetty writes CRLF); `:` lines are
//! keep-alives; a frame without `event:` takes the type from its JSON's `eventType`.

/// Splits a byte stream into frames, keeping the unfinished tail between calls.
#[derive(Default)]
pub struct SseReader {
    buf: Vec<u8>,
    event: Option<String>,
    data: String,
}

/// Frames longer than this are cut off (a runaway stream cannot grow the buffer without bound).
const MAX_LINE: usize = 4 << 20;

impl SseReader {
    /// Feeds `bytes`; returns the types of the frames they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if let Some(t) = self.finish() {
                    out.push(t);
                }
            } else if line.starts_with(':') {
                // keep-alive comment
            } else if let Some(v) = field(line, "event") {
                self.event = Some(v.to_string());
            } else if let Some(v) = field(line, "data") {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(v);
            }
        }
        if self.buf.len() > MAX_LINE {
            self.buf.clear();
        }
        out
    }

    fn finish(&mut self) -> Option<String> {
        let event = self.event.take();
        let data = std::mem::take(&mut self.data);
        event.or_else(|| {
            serde_json::from_str::<serde_json::Value>(&data)
                .ok()?
                .get("eventType")?
                .as_str()
                .map(String::from)
        })
    }
}

/// The value of `name: value` (the space after the colon is optional).
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(name)?.strip_prefix(':')?;
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

/// Events after which the apps' tasks or definitions may have changed (marathon-lb's three, and
/// the ones that end apps and deployments).
pub const RELEVANT: &[&str] = &[
    "status_update_event",
    "health_status_changed_event",
    "api_post_event",
    "app_terminated_event",
    "deployment_success",
    "deployment_step_success",
    "instance_health_changed_event",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_anywhere_with_crlf_keepalives_and_ids() {
        let stream = "id: 1\r\nevent: status_update_event\r\ndata: {\"taskStatus\":\"TASK_RUNNING\"}\r\n\r\n\
                      :\r\n\r\nid: 2\nevent: api_post_event\ndata: {}\n\n\
                      data: {\"eventType\":\"app_terminated_event\"}\n\n";
        let mut r = SseReader::default();
        let mut got = Vec::new();
        for chunk in stream.as_bytes().chunks(7) {
            got.extend(r.push(chunk));
        }
        assert_eq!(
            got,
            [
                "status_update_event",
                "api_post_event",
                "app_terminated_event"
            ]
        );
    }
}
