module github.com/onwardsgo/pool

go 1.23.0

require golang.org/x/time v0.12.0

require (
	github.com/stretchr/testify v1.12.1
	go.uber.org/goleak v1.3.0
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)
