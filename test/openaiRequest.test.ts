import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { asyncBody, decode, type Route } from "../plugins/openai/request.ts"

const encoder = new TextEncoder()
const chat = "/v1/chat/completions" as const
const completions = "/v1/completions" as const
const embeddings = "/v1/embeddings" as const
const messages = `"messages":[{"role":"user","content":"hi"}]`

const outcome = (route: Route, body: string) =>
  Either.match(decode(route, encoder.encode(body)), {
    onLeft: (error) => ({ error: error._tag, message: error.message }),
    onRight: ({ model, stream }) => ({ model, stream })
  })
const bad = (message: string) => ({ error: "BadRequest", message })

describe("OpenAI requests are decoded as Ollama's /v1 middlewares decode them", () => {
  it("an empty body is Go's EOF, as the middleware passes it on", () => {
    expect(outcome(chat, "")).toEqual(bad("EOF"))
    expect(outcome(embeddings, " \n")).toEqual(bad("EOF"))
    // only JSON whitespace is whitespace to Go
    expect(outcome(chat, "\ufeff")).toEqual(bad("invalid character 'ï' looking for beginning of value"))
  })

  it("syntax errors in Go's words", () => {
    expect(outcome(chat, "{bad")).toEqual(bad("invalid character 'b' looking for beginning of object key string"))
    expect(outcome(completions, `{"model":"m"`)).toEqual(bad("unexpected EOF"))
  })

  it("only the first JSON value is read, as gin's ShouldBindJSON does", () => {
    expect(outcome(chat, `{"model":"llama3.2",${messages}} trailing`)).toEqual({ model: "llama3.2", stream: false })
    expect(outcome(embeddings, `{"model":"m","input":"x"}{"model":1}`)).toEqual({ model: "m", stream: false })
  })

  it("a top-level value that is not an object names the openai struct; null is an empty request", () => {
    expect(outcome(chat, "[]")).toEqual(bad("json: cannot unmarshal array into Go value of type openai.ChatCompletionRequest"))
    expect(outcome(completions, "1")).toEqual(bad("json: cannot unmarshal number into Go value of type openai.CompletionRequest"))
    expect(outcome(chat, "null")).toEqual(bad("[] is too short - 'messages'"))
  })

  it("type errors of the fields foreman reads, the first in document order", () => {
    expect(outcome(chat, `{"model":5,${messages}}`)).toEqual(
      bad("json: cannot unmarshal number into Go struct field ChatCompletionRequest.model of type string")
    )
    expect(outcome(chat, `{"messages":"hi","model":5}`)).toEqual(
      bad("json: cannot unmarshal string into Go struct field ChatCompletionRequest.messages of type []openai.Message")
    )
    expect(outcome(embeddings, `{"model":[]}`)).toEqual(
      bad("json: cannot unmarshal array into Go struct field EmbedRequest.model of type string")
    )
  })

  it("keys are matched with Go's folding; null leaves a string or a bool as it was", () => {
    expect(outcome(chat, `{"MODEL":"m","meſſages":[{}],"ſtream":true}`)).toEqual({ model: "m", stream: true })
    expect(outcome(chat, `{"model":"m","Model":null,${messages},"stream":true,"Stream":null}`)).toEqual({ model: "m", stream: true })
    expect(outcome(chat, `{"model":"m",${messages},"stream":true,"STREAM":false}`)).toEqual({ model: "m", stream: false })
  })

  it("the middlewares' own checks come before the model's", () => {
    expect(outcome(chat, `{"model":"m","messages":[]}`)).toEqual(bad("[] is too short - 'messages'"))
    expect(outcome(chat, `{"model":"m","messages":null}`)).toEqual(bad("[] is too short - 'messages'"))
    expect(outcome(completions, `{"prompt":["x"]}`)).toEqual(bad("invalid type for 'prompt' field: []interface {}"))
    expect(outcome(completions, `{"model":"m","prompt":{}}`)).toEqual(bad("invalid type for 'prompt' field: map[string]interface {}"))
    expect(outcome(embeddings, `{"model":"m"}`)).toEqual(bad("invalid input"))
    expect(outcome(embeddings, `{"model":"m","input":[]}`)).toEqual(bad("invalid input"))
    expect(outcome(embeddings, `{"model":"m","Input":[1]}`)).toEqual(bad("invalid input type"))
  })

  it("the model is checked by the native route's rules", () => {
    expect(outcome(chat, `{${messages}}`)).toEqual(bad("model is required"))
    expect(outcome(completions, `{"model":" "}`)).toEqual({ error: "ModelNotFound", message: "model ' ' not found" })
    expect(outcome(embeddings, `{"input":"x"}`)).toEqual({ error: "ModelNotFound", message: "model '' not found" })
    expect(outcome(chat, `{"model":"bad name!",${messages}}`)).toEqual(bad("invalid model name"))
    expect(outcome(completions, `{"model":"m:local:cloud"}`)).toEqual(bad(`use either :local or :cloud, not both: "m:local:cloud"`))
    expect(outcome(completions, `{"model":" M:Latest ","stream":true}`)).toEqual({ model: " M:Latest ", stream: true })
  })
})

describe("asyncBody", () => {
  it("turns streaming off under every spelling Go would read as stream", () => {
    expect(asyncBody({ model: "m", Stream: true, "ſtream": true, stream_options: {} })).toEqual({
      model: "m",
      stream_options: {},
      stream: false
    })
  })
})
