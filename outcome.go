package pool

// Outcome is how an attempt on a provider ended, as the forwarding code
// reports it with [Selection.Report]. Outlier detection counts Success,
// Failure and Timeout; the others say nothing of the provider. Every
// outcome is counted in the provider's [ProviderSnapshot].
type Outcome int

const (
	// Success is an answer from the upstream that is not a failure: any
	// status but 5xx, and 501.
	Success Outcome = iota + 1
	// Failure is a connection error, or a 5xx other than 501.
	Failure
	// Neutral says nothing of the provider, for a reason not listed here.
	Neutral
	// Timeout is an upstream that did not answer in time: a failure.
	Timeout
	// RateLimited is a local rate limit that refused before any call.
	RateLimited
	// Cancelled is a client that left before the answer.
	Cancelled

	numOutcomes = iota + 1
)

// String returns the outcome's name as metrics label it: "success",
// "failure", "neutral", "timeout", "rate_limited" or "cancelled".
func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Failure:
		return "failure"
	case Neutral:
		return "neutral"
	case Timeout:
		return "timeout"
	case RateLimited:
		return "rate_limited"
	case Cancelled:
		return "cancelled"
	}
	return "unknown"
}

// failed reports whether outlier detection counts o against the provider.
func (o Outcome) failed() bool { return o == Failure || o == Timeout }

// valid reports whether o is one of the Outcome constants.
func (o Outcome) valid() bool { return o >= Success && o < numOutcomes }

// StatusOutcome classifies an upstream status: a 5xx other than 501 is a
// Failure, anything else a Success.
func StatusOutcome(status int) Outcome {
	if status >= 500 && status <= 599 && status != 501 {
		return Failure
	}
	return Success
}
