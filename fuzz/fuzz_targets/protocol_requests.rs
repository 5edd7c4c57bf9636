//! Any bytes as a request body of each client API: the gateway's first read of it (the head),
//! then the full conversion to every upstream protocol. No input may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_gateway::Protocol;
use switchboard_gateway::protocol::ir::{Notes, ToolAliases};
use switchboard_gateway::protocol::openai::RequestHead;
use switchboard_gateway::protocol::{Api, convert};

const APIS: [Api; 7] = [
    Api::Chat,
    Api::Responses,
    Api::Messages,
    Api::Gemini,
    Api::Embeddings,
    Api::Images,
    Api::CountTokens,
];

fuzz_target!(|data: &[u8]| {
    for api in APIS {
        let path = (api == Api::Gemini).then_some(("m", true));
        let _ = RequestHead::parse(api, data, path);
    }
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    for api in APIS {
        let mut notes = Notes::default();
        if let Ok(req) = convert::decode_request(api, &body, &mut notes) {
            for target in [Protocol::OpenAi, Protocol::Anthropic, Protocol::Gemini] {
                let _ = convert::encode_request(target, &req, "m", &mut notes);
            }
        }
    }
    for upstream in [Protocol::OpenAi, Protocol::Anthropic, Protocol::Gemini] {
        for client in [Api::Chat, Api::Responses, Api::Messages, Api::Gemini] {
            let _ = convert::convert_reply(upstream, client, data, &ToolAliases::default());
        }
    }
});
