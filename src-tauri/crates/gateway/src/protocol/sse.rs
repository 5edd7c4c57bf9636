//! Server-sent events: an incremental reader for upstream streams (events may be split across
//! any number of network chunks) and the writer for converted ones.

use bytes::BytesMut;

/// One event: its `event:` name (empty when absent) and its `data:` lines joined by `\n`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Frame {
    pub event: String,
    pub data: String,
}

const MAX_LINE: usize = 16 << 20;

#[derive(Debug, Default)]
pub struct Reader {
    buf: Vec<u8>,
    /// Where the next line starts in `buf`.
    pos: usize,
    event: String,
    data: String,
    has_data: bool,
}

impl Reader {
    /// Feeds bytes and hands each complete event to `each`.
    pub fn feed(&mut self, bytes: &[u8], mut each: impl FnMut(Frame)) {
        self.buf.extend_from_slice(bytes);
        while let Some(nl) = memchr::memchr(b'\n', &self.buf[self.pos..]) {
            let end = self.pos + nl;
            let mut line = &self.buf[self.pos..end];
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            let line = String::from_utf8_lossy(line);
            self.pos = end + 1;
            if line.is_empty() {
                if self.has_data || !self.event.is_empty() {
                    each(Frame {
                        event: std::mem::take(&mut self.event),
                        data: std::mem::take(&mut self.data),
                    });
                }
                self.has_data = false;
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (&*line, ""),
            };
            match field {
                "event" => value.clone_into(&mut self.event),
                "data" => {
                    if self.has_data {
                        self.data.push('\n');
                    }
                    self.data.push_str(value);
                    self.has_data = true;
                }
                _ => {}
            }
        }
        // A line with no end in sight (not an event stream, or a hostile one) is dropped
        // rather than held without bound.
        if self.buf.len() - self.pos > MAX_LINE {
            self.buf.clear();
            self.pos = 0;
            return;
        }
        // Drop consumed lines now and then, not on every feed.
        if self.pos > 0 && (self.pos == self.buf.len() || self.pos > 4096) {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }

    /// At the end of the stream: an event that lacked its closing blank line still counts.
    pub fn finish(&mut self, each: impl FnMut(Frame)) {
        if self.pos < self.buf.len() {
            self.feed(b"\n", |_| {});
        }
        let mut each = each;
        if self.has_data {
            self.has_data = false;
            each(Frame {
                event: std::mem::take(&mut self.event),
                data: std::mem::take(&mut self.data),
            });
        }
    }
}

/// `event: NAME\ndata: JSON\n\n`.
pub fn write_event(out: &mut BytesMut, event: &str, data: &serde_json::Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    write_json(out, data);
    out.extend_from_slice(b"\n\n");
}

/// `data: JSON\n\n`.
pub fn write_data(out: &mut BytesMut, data: &serde_json::Value) {
    out.extend_from_slice(b"data: ");
    write_json(out, data);
    out.extend_from_slice(b"\n\n");
}

fn write_json(out: &mut BytesMut, v: &serde_json::Value) {
    use bytes::BufMut;
    // Writing into BytesMut cannot fail; serde_json only errors on non-string map keys,
    // which a Value cannot hold.
    let _ = serde_json::to_writer(out.writer(), v);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(chunks: &[&[u8]]) -> Vec<Frame> {
        let mut r = Reader::default();
        let mut out = Vec::new();
        for c in chunks {
            r.feed(c, |f| out.push(f));
        }
        r.finish(|f| out.push(f));
        out
    }

    #[test]
    fn events_split_anywhere() {
        let whole = b"event: a\ndata: {\"x\":1}\n\n: comment\r\ndata: two\r\ndata: lines\r\n\r\ndata: [DONE]\n\n";
        let expected = vec![
            Frame {
                event: "a".into(),
                data: "{\"x\":1}".into(),
            },
            Frame {
                event: String::new(),
                data: "two\nlines".into(),
            },
            Frame {
                event: String::new(),
                data: "[DONE]".into(),
            },
        ];
        assert_eq!(frames(&[whole]), expected);
        for cut in 1..whole.len() {
            assert_eq!(
                frames(&[&whole[..cut], &whole[cut..]]),
                expected,
                "cut at {cut}"
            );
        }
        let bytes: Vec<&[u8]> = whole.chunks(1).collect();
        assert_eq!(frames(&bytes), expected);
    }

    #[test]
    fn last_event_without_blank_line() {
        assert_eq!(
            frames(&[b"data: a"]),
            vec![Frame {
                event: String::new(),
                data: "a".into()
            }]
        );
    }
}
