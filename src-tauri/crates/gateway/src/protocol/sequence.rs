//! Parallel tool calls, one after the other. An OpenAI-compatible upstream may interleave the
//! argument pieces of parallel calls (call 0 starts, call 1 starts, arguments of 0, of 1...),
//! but Anthropic and Responses clients get one open block at a time: a piece for a block
//! already closed has nowhere to go. So the first call streams as it comes, and calls that
//! start while it is open are held whole and follow it when the reply moves on (text,
//! reasoning, the finish, or the end). A client sees every argument; only the later calls wait.

use super::ir::Event;

#[derive(Debug, Default)]
pub struct ToolSequencer {
    /// The call passed through and still open at the client.
    open: Option<usize>,
    held: Vec<Held>,
}

#[derive(Debug)]
struct Held {
    index: usize,
    id: String,
    name: String,
    args: String,
}

impl ToolSequencer {
    pub fn push(&mut self, ev: Event, out: &mut Vec<Event>) {
        match ev {
            Event::ToolStart { index, id, name } => {
                if self.open.is_none() && self.held.is_empty() {
                    self.open = Some(index);
                    out.push(Event::ToolStart { index, id, name });
                } else {
                    self.held.push(Held {
                        index,
                        id,
                        name,
                        args: String::new(),
                    });
                }
            }
            Event::ToolArgs { index, delta } => {
                if let Some(h) = self.held.iter_mut().find(|h| h.index == index) {
                    h.args.push_str(&delta);
                } else {
                    // The open call's, or one the client encoder will say it cannot place.
                    out.push(Event::ToolArgs { index, delta });
                }
            }
            // Neither closes a block.
            Event::Start { .. } | Event::Usage(_) | Event::Signature(_) => out.push(ev),
            Event::Error { .. } => {
                self.held.clear();
                out.push(ev);
            }
            Event::Text(_) | Event::Reasoning(_) | Event::Finish(_) => {
                self.flush(out);
                self.open = None;
                out.push(ev);
            }
        }
    }

    /// The held calls, each whole, after the open one.
    pub fn flush(&mut self, out: &mut Vec<Event>) {
        for h in self.held.drain(..) {
            self.open = Some(h.index);
            out.push(Event::ToolStart {
                index: h.index,
                id: h.id,
                name: h.name,
            });
            if !h.args.is_empty() {
                out.push(Event::ToolArgs {
                    index: h.index,
                    delta: h.args,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ir::Finish;

    fn start(index: usize) -> Event {
        Event::ToolStart {
            index,
            id: format!("call_{index}"),
            name: format!("f{index}"),
        }
    }

    fn args(index: usize, delta: &str) -> Event {
        Event::ToolArgs {
            index,
            delta: delta.into(),
        }
    }

    fn run(events: Vec<Event>) -> Vec<Event> {
        let mut s = ToolSequencer::default();
        let mut out = Vec::new();
        for ev in events {
            s.push(ev, &mut out);
        }
        s.flush(&mut out);
        out
    }

    #[test]
    fn interleaved_calls_come_out_one_after_the_other_whole() {
        let out = run(vec![
            start(0),
            start(1),
            args(0, "{\"a\":"),
            args(1, "{\"b\":"),
            args(0, "1}"),
            args(1, "2}"),
            Event::Finish(Finish::ToolCalls),
        ]);
        assert_eq!(
            out,
            vec![
                start(0),
                args(0, "{\"a\":"),
                args(0, "1}"),
                start(1),
                args(1, "{\"b\":2}"),
                Event::Finish(Finish::ToolCalls),
            ]
        );
    }

    #[test]
    fn calls_one_after_the_other_keep_every_piece() {
        let out = run(vec![
            Event::Text("Let me check.".into()),
            start(0),
            args(0, "{}"),
            start(1),
            args(1, "{\"x\""),
            args(1, ":1}"),
        ]);
        assert_eq!(
            out,
            vec![
                Event::Text("Let me check.".into()),
                start(0),
                args(0, "{}"),
                start(1),
                args(1, "{\"x\":1}"),
            ]
        );
    }

    #[test]
    fn a_call_after_text_streams_again() {
        let out = run(vec![
            start(0),
            start(1),
            Event::Text("and".into()),
            start(2),
            args(2, "{}"),
        ]);
        assert_eq!(
            out,
            vec![
                start(0),
                start(1),
                Event::Text("and".into()),
                start(2),
                args(2, "{}"),
            ]
        );
    }
}
