package poolredis

import (
	"errors"
	"testing"

	"github.com/onwardsgo/pool"
)

func TestRegistriesShareInflightLimits(t *testing.T) {
	b := newBackend(t, false)
	p := prefix(t)
	cfg, err := pool.ParseConfig([]byte(`{"auth": {"key_definitions": {
		"a": {"key": "sk-acme-1", "labels": {"account": "acme"}},
		"b": {"key": "sk-acme-2", "labels": {"account": "acme"}}}},
		"targets": {"chat": {"inflight_limit": 1, "batch_inflight_limit": 1,
			"providers": [{"url": "https://a.example.com"}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	var replicas []*pool.Registry
	for range 2 {
		s, _ := b.store(t, p, Options{})
		r := &pool.Registry{Shared: s}
		if err := r.Reload(cfg); err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, r)
	}
	hold := func(r *pool.Registry, key string, dispatched bool) (*pool.Admission, error) {
		adm, err := r.Admit("chat", key)
		if err != nil {
			t.Fatal(err)
		}
		if err := adm.HoldInflight(dispatched); err != nil {
			adm.Close()
			return nil, err
		}
		return adm, nil
	}
	held, err := hold(replicas[0], "sk-acme-1", false)
	mustBe(t, err == nil, "the account's first request")
	_, err = hold(replicas[1], "sk-acme-2", false)
	var ae *pool.AdmissionError
	mustBe(t, errors.As(err, &ae) && ae.Code == "inflight_limit_exceeded", "the account's second, on the other replica")
	batch, err := hold(replicas[1], "sk-acme-2", true)
	mustBe(t, err == nil, "batch work has its own count")
	_, err = hold(replicas[0], "sk-acme-1", true)
	mustBe(t, errors.As(err, &ae) && ae.Status == 529, "the batch cap holds across replicas")
	held.Close()
	batch.Close()
	again, err := hold(replicas[1], "sk-acme-2", false)
	mustBe(t, err == nil, "released on the first replica, free on the second")
	again.Close()
}
