package config

import (
	"os"
	"strings"
	"testing"
)

// The docs are part of the contract: every variable toolgate reads must be
// explained in the README and in config.example.env.
func TestEveryVariableIsDocumented(t *testing.T) {
	for _, file := range []string{"../README.md", "../config.example.env"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range Variables() {
			if !strings.Contains(string(b), v) {
				t.Errorf("%s does not mention %s", file, v)
			}
		}
	}
}
