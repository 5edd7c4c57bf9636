"""The official OpenAI, Anthropic and Gemini SDKs against Switchboard, each asking for a model
that a provider of another protocol serves. Run by tests/sdk_clients.rs, which starts the
gateway and the mock upstreams and passes SB_URL and SB_KEY.

Each case asks a question with one tool, expects the (mock) model to call it with
{"city": "Paris"}, sends the result back with the call's id, and expects the answer
"The tool said: sunny" -- plain and streamed. One line per passed case; any failure raises.
"""

import json
import os
import sys

URL = os.environ["SB_URL"]
KEY = os.environ["SB_KEY"]
QUESTION = "What is the weather in Paris?"
ARGS = {"city": "Paris"}
ANSWER = "The tool said: sunny"
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def openai_chat(model):
    from openai import OpenAI

    client = OpenAI(base_url=URL + "/v1", api_key=KEY, max_retries=0)
    tools = [{"type": "function", "function": {"name": "get_weather",
                                               "description": "Weather in a city",
                                               "parameters": SCHEMA}}]
    messages = [{"role": "user", "content": QUESTION}]
    for stream in (False, True):
        if stream:
            calls = {}
            finish = None
            usage = None
            for chunk in client.chat.completions.create(
                    model=model, messages=messages, tools=tools, stream=True,
                    stream_options={"include_usage": True}):
                if chunk.usage:
                    usage = chunk.usage
                for choice in chunk.choices:
                    for tc in choice.delta.tool_calls or []:
                        c = calls.setdefault(tc.index, {"id": "", "name": "", "args": ""})
                        c["id"] = tc.id or c["id"]
                        c["name"] = (tc.function.name or "") or c["name"]
                        c["args"] += tc.function.arguments or ""
                    finish = choice.finish_reason or finish
            check(finish == "tool_calls", f"finish {finish}")
            check(usage is not None and usage.completion_tokens > 0, f"usage {usage}")
            call = calls[0]
        else:
            r = client.chat.completions.create(model=model, messages=messages, tools=tools)
            check(r.choices[0].finish_reason == "tool_calls", r)
            tc = r.choices[0].message.tool_calls[0]
            call = {"id": tc.id, "name": tc.function.name, "args": tc.function.arguments}
        check(call["name"] == "get_weather" and json.loads(call["args"]) == ARGS, call)
        check(call["id"], "the call has an id")
        history = messages + [
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": call["id"], "type": "function",
                 "function": {"name": call["name"], "arguments": call["args"]}}]},
            {"role": "tool", "tool_call_id": call["id"], "content": "sunny"},
        ]
        if stream:
            text = "".join(c.choices[0].delta.content or ""
                           for c in client.chat.completions.create(
                               model=model, messages=history, tools=tools, stream=True)
                           if c.choices)
        else:
            text = client.chat.completions.create(
                model=model, messages=history, tools=tools).choices[0].message.content
        check(text == ANSWER, text)
        print(f"ok openai chat -> {model} stream={stream}")


def openai_responses(model):
    from openai import OpenAI

    client = OpenAI(base_url=URL + "/v1", api_key=KEY, max_retries=0)
    tools = [{"type": "function", "name": "get_weather", "description": "Weather in a city",
              "parameters": SCHEMA}]
    items = [{"role": "user", "content": QUESTION}]
    for stream in (False, True):
        def ask(inp):
            if not stream:
                return client.responses.create(model=model, input=inp, tools=tools)
            done = None
            deltas = ""
            for ev in client.responses.create(model=model, input=inp, tools=tools, stream=True):
                if ev.type == "response.output_text.delta":
                    deltas += ev.delta
                if ev.type == "response.completed":
                    done = ev.response
            check(done is not None, "the stream ended with response.completed")
            check(deltas == done.output_text, (deltas, done.output_text))
            return done

        r = ask(items)
        calls = [o for o in r.output if o.type == "function_call"]
        check(len(calls) == 1, r.output)
        fc = calls[0]
        check(fc.name == "get_weather" and json.loads(fc.arguments) == ARGS, fc)
        r2 = ask(items + [
            {"type": "function_call", "call_id": fc.call_id, "name": fc.name,
             "arguments": fc.arguments},
            {"type": "function_call_output", "call_id": fc.call_id, "output": "sunny"},
        ])
        check(r2.output_text == ANSWER, r2.output_text)
        check(r2.usage.output_tokens > 0, r2.usage)
        print(f"ok openai responses -> {model} stream={stream}")


def anthropic_messages(model):
    import anthropic

    client = anthropic.Anthropic(base_url=URL, api_key=KEY, max_retries=0)
    tools = [{"name": "get_weather", "description": "Weather in a city", "input_schema": SCHEMA}]
    messages = [{"role": "user", "content": QUESTION}]
    for stream in (False, True):
        def ask(msgs):
            if not stream:
                return client.messages.create(model=model, max_tokens=256, messages=msgs,
                                              tools=tools)
            with client.messages.stream(model=model, max_tokens=256, messages=msgs,
                                        tools=tools) as s:
                for _ in s:
                    pass
                return s.get_final_message()

        m = ask(messages)
        check(m.stop_reason == "tool_use", m)
        uses = [b for b in m.content if b.type == "tool_use"]
        check(len(uses) == 1 and uses[0].name == "get_weather" and uses[0].input == ARGS, m.content)
        check(m.usage.output_tokens > 0, m.usage)
        m2 = ask(messages + [
            {"role": "assistant", "content": [b.model_dump() for b in m.content]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": uses[0].id, "content": "sunny"}]},
        ])
        text = "".join(b.text for b in m2.content if b.type == "text")
        check(text == ANSWER, text)
        check(m2.stop_reason == "end_turn", m2.stop_reason)
        print(f"ok anthropic messages -> {model} stream={stream}")
    count = client.messages.count_tokens(model=model, messages=messages)
    check(count.input_tokens > 0, count)
    names = [m.id for m in client.models.list()]
    check(model in names, names)
    print(f"ok anthropic count_tokens and models -> {model}")


def gemini(model):
    from google import genai
    from google.genai import types

    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=URL))
    config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[
        types.FunctionDeclaration(name="get_weather", description="Weather in a city",
                                  parameters_json_schema=SCHEMA)])])
    question = types.Content(role="user", parts=[types.Part(text=QUESTION)])
    for stream in (False, True):
        def ask(contents):
            if not stream:
                r = client.models.generate_content(model=model, contents=contents, config=config)
                return r.text or "", r.function_calls or [], r.candidates[0].content
            text, calls, parts = "", [], []
            for chunk in client.models.generate_content_stream(model=model, contents=contents,
                                                               config=config):
                text += chunk.text or ""
                calls += chunk.function_calls or []
                if chunk.candidates and chunk.candidates[0].content:
                    parts += chunk.candidates[0].content.parts or []
            return text, calls, types.Content(role="model", parts=parts)

        _, calls, content = ask([question])
        check(len(calls) == 1, calls)
        fc = calls[0]
        check(fc.name == "get_weather" and fc.args == ARGS, fc)
        check(fc.id, "a converted call has an id")
        result = types.Content(role="user", parts=[types.Part(
            function_response=types.FunctionResponse(id=fc.id, name=fc.name,
                                                     response={"output": "sunny"}))])
        text, calls, _ = ask([question, content, result])
        check(text == ANSWER and not calls, (text, calls))
        print(f"ok gemini -> {model} stream={stream}")
    models = [m.name for m in client.models.list()]
    check(f"models/{model}" in models, models)
    print(f"ok gemini models -> {model}")


CASES = {
    "openai-chat": openai_chat,
    "openai-responses": openai_responses,
    "anthropic": anthropic_messages,
    "gemini": gemini,
}

if __name__ == "__main__":
    for arg in sys.argv[1:]:
        name, model = arg.split(":")
        CASES[name](model)
