//! What conversion costs per stream chunk: one upstream SSE chunk in, the client's events out.
//! The chunks are what real providers send mid-stream: a text delta, a tool-call argument
//! delta. Each iteration feeds one chunk to a converter that is already mid-stream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, criterion_group, criterion_main};
use switchboard_gateway::Protocol;
use switchboard_gateway::protocol::Api;
use switchboard_gateway::protocol::convert::{ClientStream, StreamConverter};

const OPENAI_TEXT: &[u8] = b"data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" token\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n";
const OPENAI_TOOL_ARGS: &[u8] = b"data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Par\"}}]},\"logprobs\":null,\"finish_reason\":null}]}\n\n";
const OPENAI_TOOL_START: &[u8] = b"data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n";
const ANTHROPIC_TEXT: &[u8] = b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" token\"}}\n\n";
const GEMINI_TEXT: &[u8] = b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\" token\"}],\"role\":\"model\"},\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":9,\"candidatesTokenCount\":4,\"totalTokenCount\":13},\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"abc\"}\r\n\r\n";

/// A converter past its first events, so the benchmark sees the steady state.
fn warmed(upstream: Protocol, client: Api, prefix: &[&[u8]]) -> StreamConverter {
    let mut c = StreamConverter::new(upstream, client, ClientStream::default());
    let mut out = BytesMut::new();
    for p in prefix {
        c.feed(p, &mut out);
    }
    c
}

/// Name, upstream protocol, client API, chunks fed first, the chunk measured.
type Case = (
    &'static str,
    Protocol,
    Api,
    &'static [&'static [u8]],
    &'static [u8],
);

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("convert chunk");
    let cases: [Case; 6] = [
        (
            "openai text -> anthropic",
            Protocol::OpenAi,
            Api::Messages,
            &[OPENAI_TEXT],
            OPENAI_TEXT,
        ),
        (
            "openai tool args -> anthropic",
            Protocol::OpenAi,
            Api::Messages,
            &[OPENAI_TOOL_START],
            OPENAI_TOOL_ARGS,
        ),
        (
            "openai text -> responses",
            Protocol::OpenAi,
            Api::Responses,
            &[OPENAI_TEXT],
            OPENAI_TEXT,
        ),
        (
            "openai text -> gemini",
            Protocol::OpenAi,
            Api::Gemini,
            &[OPENAI_TEXT],
            OPENAI_TEXT,
        ),
        (
            "anthropic text -> openai",
            Protocol::Anthropic,
            Api::Chat,
            &[ANTHROPIC_TEXT],
            ANTHROPIC_TEXT,
        ),
        (
            "gemini text -> anthropic",
            Protocol::Gemini,
            Api::Messages,
            &[GEMINI_TEXT],
            GEMINI_TEXT,
        ),
    ];
    for (name, upstream, client, prefix, chunk) in cases {
        let mut conv = warmed(upstream, client, prefix);
        let mut out = BytesMut::with_capacity(4096);
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                conv.feed(black_box(chunk), &mut out);
                black_box(out.len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
