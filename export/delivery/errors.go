package delivery

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Kind says what the delivery core does with a batch a Sender failed to deliver.
type Kind int

const (
	// Retry: transient (network error, 5xx): capped exponential backoff with jitter.
	Retry Kind = iota
	// Throttle: 429, 502, 503, 504: wait Retry-After if given, else back off.
	Throttle
	// TooLarge: 413: split the batch in two and send each half.
	TooLarge
	// Drop: the receiver refused the batch for good (400, 422, other 4xx):
	// count it as dropped and go on.
	Drop
)

func (k Kind) String() string {
	switch k {
	case Retry:
		return "retry"
	case Throttle:
		return "throttle"
	case TooLarge:
		return "too_large"
	case Drop:
		return "rejected"
	}
	return "unknown"
}

// Error is a classified delivery failure.
type Error struct {
	Kind       Kind
	Status     int           // HTTP status, 0 when not HTTP
	RetryAfter time.Duration // from Retry-After (Throttle), 0 if absent
	// Dropped, for Drop: how many samples of the batch the receiver refused
	// when it stored the rest (InfluxDB's "partial write ... dropped=N");
	// 0 means the whole batch.
	Dropped int
	Err     error
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("%s (HTTP %d): %v", e.Kind, e.Status, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Kind, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Permanent wraps err as a Drop error (e.g. a batch that cannot be encoded).
func Permanent(err error) error { return &Error{Kind: Drop, Err: err} }

// kindOf classifies any error: an *Error keeps its kind, anything else
// (network errors, timeouts) is retried.
func kindOf(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: Retry, Err: err}
}

// maxRetryAfter caps a receiver's Retry-After.
const maxRetryAfter = 10 * time.Minute

// Classify turns an HTTP response into nil (2xx) or an *Error, following
// the rules every push output shares: 2xx delivered; 413 split; 429, 502,
// 503 and 504 throttle (honouring Retry-After); other 5xx retry; 400, 422
// and every other status drop the batch. It reads (at most 1 KiB of) and
// closes the body.
func Classify(resp *http.Response, now time.Time) error {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	code := resp.StatusCode
	if code/100 == 2 {
		return nil
	}
	msg := strings.TrimSpace(string(body))
	if msg == "" {
		msg = http.StatusText(code)
	}
	e := &Error{Status: code, Err: errors.New(msg)}
	switch {
	case code == http.StatusRequestEntityTooLarge:
		e.Kind = TooLarge
	case code == http.StatusTooManyRequests || code == http.StatusBadGateway ||
		code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout:
		e.Kind = Throttle
		e.RetryAfter = ParseRetryAfter(resp.Header.Get("Retry-After"), now)
	case code/100 == 5:
		e.Kind = Retry
	default:
		e.Kind = Drop
	}
	return e
}

// ParseRetryAfter reads a Retry-After header: delay-seconds or an HTTP
// date; 0 when absent or invalid; capped at 10 minutes.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.Atoi(v); err == nil {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	if d < 0 {
		return 0
	}
	return min(d, maxRetryAfter)
}
