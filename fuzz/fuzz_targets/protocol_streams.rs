//! Any bytes as an upstream stream, cut at every byte the input's first byte chooses, through
//! every converter (upstream protocol to client API). No input may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_gateway::Protocol;
use switchboard_gateway::protocol::Api;
use switchboard_gateway::protocol::convert::{ClientStream, StreamConverter};

/// The input after its first byte, in pieces of (first byte % 16 + 1) bytes.
fn split(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let (size, rest) = match data.split_first() {
        Some((b, rest)) => (usize::from(*b % 16) + 1, rest),
        None => (1, data),
    };
    rest.chunks(size)
}

fuzz_target!(|data: &[u8]| {
    for upstream in [Protocol::OpenAi, Protocol::Anthropic, Protocol::Gemini] {
        for client in [Api::Chat, Api::Responses, Api::Messages, Api::Gemini] {
            // The JSON-array form exists only for Gemini clients.
            for json_array in [false, client == Api::Gemini] {
                let mut conv = StreamConverter::new(
                    upstream,
                    client,
                    ClientStream {
                        include_usage: true,
                        json_array,
                        aliases: Default::default(),
                    },
                );
                let mut out = bytes::BytesMut::new();
                for piece in split(data) {
                    conv.feed(piece, &mut out);
                }
                let _ = conv.complete();
                conv.finish(&mut out);
            }
        }
    }
});
