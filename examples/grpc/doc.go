// Package example is the gRPC walk-through of README.md in this folder: a
// config repository (databus.yaml, apis/, policies/, protos/) whose APIs
// call the inventory service of ./server over gRPC, with its message types
// from server reflection or from the committed descriptor set. Its test
// runs the walk-through against a real gateway and a real gRPC server.
package example
