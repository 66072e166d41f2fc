module github.com/onwardsgo/pool/poolredis

go 1.23.0

require (
	github.com/alicebob/miniredis/v2 v2.40.0
	github.com/onwardsgo/pool v0.0.0
	github.com/redis/go-redis/v9 v9.17.3
	go.uber.org/goleak v1.3.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/dgryski/go-rendezvous v0.0.0-20200823014737-9f7001d12a5f // indirect
	github.com/yuin/gopher-lua v1.1.1 // indirect
	golang.org/x/time v0.12.0 // indirect
)

replace github.com/onwardsgo/pool => ../
