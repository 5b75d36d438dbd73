//! Server-sent events as OpenAI-compatible servers stream them: `data:` lines, events ended by a
//! blank line, `data: [DONE]` at the end. Pure: fed bytes as they arrive, gives complete events.

/// Splits a byte stream into SSE events (the joined `data:` lines of each).
#[derive(Debug, Default)]
pub struct Parser {
    buf: Vec<u8>,
    data: Option<String>,
}

/// The most a single line may hold before the stream is refused (a server that never sends a
/// newline must not grow memory without bound).
pub const MAX_LINE: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The payload of one event (`data:` lines joined by `\n`).
    Data(String),
    /// `data: [DONE]`: the stream is complete.
    Done,
}

impl Parser {
    /// Feed bytes; returns the events they complete. Err when a line exceeds [`MAX_LINE`].
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Event>, String> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            self.line(&String::from_utf8_lossy(&line), &mut out);
        }
        if self.buf.len() > MAX_LINE {
            return Err(format!(
                "a line of the event stream is longer than {MAX_LINE} bytes"
            ));
        }
        Ok(out)
    }

    /// The end of the stream: a last event not followed by a blank line still counts.
    pub fn finish(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            let line = String::from_utf8_lossy(&rest)
                .trim_end_matches('\r')
                .to_string();
            self.line(&line, &mut out);
        }
        self.dispatch(&mut out);
        out
    }

    fn line(&mut self, line: &str, out: &mut Vec<Event>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.starts_with(':') {
            return; // a comment (keep-alive)
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        if field == "data" {
            match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            }
        }
    }

    fn dispatch(&mut self, out: &mut Vec<Event>) {
        if let Some(d) = self.data.take() {
            out.push(if d.trim() == "[DONE]" {
                Event::Done
            } else {
                Event::Data(d)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> Vec<Event> {
        let mut p = Parser::default();
        let mut out = Vec::new();
        for c in chunks {
            out.extend(p.feed(c).unwrap());
        }
        out.extend(p.finish());
        out
    }

    #[test]
    fn events_split_anywhere_are_put_back_together() {
        let text = b"data: {\"a\":1}\n\ndata: {\"b\":2}\r\n\r\n: keep-alive\n\ndata: [DONE]\n\n";
        let whole = all(&[text]);
        assert_eq!(
            whole,
            vec![
                Event::Data("{\"a\":1}".into()),
                Event::Data("{\"b\":2}".into()),
                Event::Done
            ]
        );
        // Byte by byte gives the same events.
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(all(&bytes), whole);
    }

    #[test]
    fn multi_line_data_is_joined_and_a_last_event_without_blank_line_counts() {
        assert_eq!(
            all(&[b"data:one\ndata: two\nevent: x\n\ndata: last"]),
            vec![Event::Data("one\ntwo".into()), Event::Data("last".into())]
        );
        assert!(all(&[b"event: ping\n\n"]).is_empty());
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut p = Parser::default();
        let big = vec![b'x'; MAX_LINE + 1];
        assert!(p.feed(&big).unwrap_err().contains("longer than"));
    }
}
