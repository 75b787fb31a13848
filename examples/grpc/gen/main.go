// Command gen writes protos/inventory.pb, the descriptor set of
// protos/inventory.proto (go generate ./examples/grpc/protos runs it), or
// with -check fails when the committed file differs from what it would
// write.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/databus-gateway/databus/examples/grpc/protos"
)

func main() {
	out := flag.String("o", "inventory.pb", "the descriptor set to write")
	check := flag.Bool("check", false, "compare with the file instead of writing it")
	flag.Parse()
	data, err := protos.Compile()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *check {
		old, err := os.ReadFile(*out)
		if err != nil || !bytes.Equal(old, data) {
			fmt.Fprintf(os.Stderr, "%s is not the descriptor set of %s: run go generate ./examples/grpc/protos\n", *out, protos.File)
			os.Exit(1)
		}
		return
	}
	if err := os.WriteFile(*out, data, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
