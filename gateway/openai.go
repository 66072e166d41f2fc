package gateway

import "encoding/json"

// The OpenAI response shapes that sanitization re-encodes: each has
// OpenAI's documented fields only, so decoding drops every other field.
// Nested values that OpenAI leaves open (logprobs, an embedding vector) are
// kept as they came.

// chatCompletion is a chat.completion object.
type chatCompletion struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	Choices           []chatChoice    `json:"choices"`
	Usage             *usage          `json:"usage,omitempty"`
	SystemFingerprint *string         `json:"system_fingerprint,omitempty"`
	ServiceTier       *string         `json:"service_tier,omitempty"`
	Error             json.RawMessage `json:"error,omitempty"` // read to detect an embedded error; never written
}

// chatChoice is a choice of a completion (Message) or of a chunk (Delta).
type chatChoice struct {
	Index        int             `json:"index"`
	Message      *message        `json:"message,omitempty"`
	Delta        *message        `json:"delta,omitempty"`
	FinishReason *string         `json:"finish_reason"`
	Logprobs     json.RawMessage `json:"logprobs,omitempty"`
	// StopReason is vLLM's and sglang's matched stop sequence, which
	// onwards keeps for downstream translation.
	StopReason json.RawMessage `json:"stop_reason,omitempty"`
}

// message is an assistant message or delta: OpenAI's fields, plus the
// reasoning fields that onwards' strict schema keeps for reasoning models.
type message struct {
	Role             string          `json:"role,omitempty"`
	Content          json.RawMessage `json:"content,omitempty"`
	Refusal          json.RawMessage `json:"refusal,omitempty"`
	ToolCalls        json.RawMessage `json:"tool_calls,omitempty"`
	FunctionCall     json.RawMessage `json:"function_call,omitempty"`
	Audio            json.RawMessage `json:"audio,omitempty"`
	Annotations      json.RawMessage `json:"annotations,omitempty"`
	Reasoning        json.RawMessage `json:"reasoning,omitempty"`
	ReasoningContent json.RawMessage `json:"reasoning_content,omitempty"`
}

// usage is a completion's token usage.
type usage struct {
	PromptTokens            int64           `json:"prompt_tokens"`
	CompletionTokens        int64           `json:"completion_tokens"`
	TotalTokens             int64           `json:"total_tokens"`
	PromptTokensDetails     *promptDetails  `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails *completionInfo `json:"completion_tokens_details,omitempty"`
}

type promptDetails struct {
	CachedTokens int64 `json:"cached_tokens"`
	AudioTokens  int64 `json:"audio_tokens"`
}

type completionInfo struct {
	ReasoningTokens          int64 `json:"reasoning_tokens"`
	AudioTokens              int64 `json:"audio_tokens"`
	AcceptedPredictionTokens int64 `json:"accepted_prediction_tokens"`
	RejectedPredictionTokens int64 `json:"rejected_prediction_tokens"`
}

// embeddingList is the answer of /v1/embeddings.
type embeddingList struct {
	Object string      `json:"object"`
	Data   []embedding `json:"data"`
	Model  string      `json:"model"`
	Usage  *struct {
		PromptTokens int64 `json:"prompt_tokens"`
		TotalTokens  int64 `json:"total_tokens"`
	} `json:"usage,omitempty"`
}

type embedding struct {
	Object    string          `json:"object"`
	Index     int             `json:"index"`
	Embedding json.RawMessage `json:"embedding"`
}

// responseFields are the top-level fields of OpenAI's Response object (the
// answer of /v1/responses); sanitization keeps these and drops the rest.
var responseFields = []string{"id", "object", "created_at", "status", "error", "incomplete_details",
	"instructions", "max_output_tokens", "max_tool_calls", "model", "output", "parallel_tool_calls",
	"previous_response_id", "prompt", "reasoning", "service_tier", "store", "temperature", "text",
	"tool_choice", "tools", "top_logprobs", "top_p", "truncation", "usage", "user", "metadata",
	"background", "conversation"}

// The request shapes strict mode validates. Only the types of the fields
// OpenAI documents are checked; unknown fields are let through, as onwards
// lets them through.

// chatRequest is a /v1/chat/completions request.
type chatRequest struct {
	Model               *string             `json:"model"`
	Messages            *[]chatMessage      `json:"messages"`
	Temperature         *float64            `json:"temperature"`
	TopP                *float64            `json:"top_p"`
	N                   *uint32             `json:"n"`
	Stream              *bool               `json:"stream"`
	StreamOptions       *struct{}           `json:"stream_options"`
	Stop                json.RawMessage     `json:"stop"`
	MaxTokens           *uint32             `json:"max_tokens"`
	MaxCompletionTokens *uint32             `json:"max_completion_tokens"`
	PresencePenalty     *float64            `json:"presence_penalty"`
	FrequencyPenalty    *float64            `json:"frequency_penalty"`
	LogitBias           *map[string]float64 `json:"logit_bias"`
	Logprobs            *bool               `json:"logprobs"`
	TopLogprobs         *uint32             `json:"top_logprobs"`
	User                *string             `json:"user"`
	Seed                *int64              `json:"seed"`
	Tools               *[]chatTool         `json:"tools"`
	ParallelToolCalls   *bool               `json:"parallel_tool_calls"`
	ResponseFormat      *typedObject        `json:"response_format"`
	ServiceTier         *string             `json:"service_tier"`
}

// chatMessage is one message of a chat request.
type chatMessage struct {
	Role       *string         `json:"role"`
	Content    json.RawMessage `json:"content"`
	Name       *string         `json:"name"`
	ToolCallID *string         `json:"tool_call_id"`
}

// chatTool is one tool of a chat request.
type chatTool struct {
	Type     *string `json:"type"`
	Function *struct {
		Name *string `json:"name"`
	} `json:"function"`
}

// typedObject is an object with a "type" string, as response_format.
type typedObject struct {
	Type *string `json:"type"`
}

// embeddingsRequest is a /v1/embeddings request.
type embeddingsRequest struct {
	Model          *string         `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat *string         `json:"encoding_format"`
	Dimensions     *uint32         `json:"dimensions"`
	User           *string         `json:"user"`
}

// responsesRequest is a /v1/responses request.
type responsesRequest struct {
	Model        *string         `json:"model"`
	Input        json.RawMessage `json:"input"`
	Instructions *string         `json:"instructions"`
	Stream       *bool           `json:"stream"`
	Temperature  *float64        `json:"temperature"`
	TopP         *float64        `json:"top_p"`
	MaxOutput    *uint32         `json:"max_output_tokens"`
}
