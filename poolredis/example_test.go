package poolredis_test

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/alicebob/miniredis/v2"
	"github.com/onwardsgo/pool"
	"github.com/onwardsgo/pool/poolredis"
	"github.com/redis/go-redis/v9"
)

// Two replicas, each with its own registry and Redis client, share an
// alias's limit of one request in flight.
func ExampleNew() {
	srv, _ := miniredis.Run() // a real deployment points at its Redis
	defer srv.Close()
	cfg, _ := pool.ParseConfig([]byte(`{"targets": {"chat": {
		"concurrency_limit": {"max_concurrent_requests": 1}, "providers": [{"url": "https://api.example.com/v1"}]}}}`))

	var replicas []*pool.Registry
	for range 2 {
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		defer rdb.Close()
		store := poolredis.New(rdb, poolredis.Options{Log: slog.New(slog.NewTextHandler(os.Stderr, nil))})
		defer store.Close()
		reg := &pool.Registry{Shared: store}
		if err := reg.Reload(cfg); err != nil {
			panic(err)
		}
		replicas = append(replicas, reg)
	}

	held, err := replicas[0].Admit("chat", "")
	fmt.Println("replica 0:", err == nil)
	_, err = replicas[1].Admit("chat", "")
	fmt.Println("replica 1:", err)
	held.Close()
	again, err := replicas[1].Admit("chat", "")
	fmt.Println("replica 1 after replica 0 is done:", err == nil)
	again.Close()
	// Output:
	// replica 0: true
	// replica 1: pool: 429 concurrency_limit_exceeded: The model "chat" has too many requests in flight; retry when one finishes.
	// replica 1 after replica 0 is done: true
}
