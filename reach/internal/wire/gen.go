// Package wire holds the generated protobuf type of package reach's tunnel.
package wire

//go:generate protoc --go_out=. --go_opt=paths=source_relative wire.proto
