package redisstore

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startRedis starts a throwaway redis-server on a free loopback port,
// requiring password unless it is empty, and returns its address; the
// server is killed when the test ends. Without redis-server the test is
// skipped, except under CI, which installs it.
//
// A port free a moment ago may be taken by another test's server before
// ours binds it, and PING would then be answered by the wrong server: the
// answering server's process id must be ours, or another port is tried.
func startRedis(t *testing.T, password string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server is not on PATH, and CI must run the Redis store tests: %v", err)
		}
		t.Skip("redis-server is not on PATH; skipping the Redis store tests")
	}
	for attempt := 1; ; attempt++ {
		addr, ok := tryStartRedis(t, bin, password)
		if ok {
			return addr
		}
		if attempt == 5 {
			t.Fatalf("redis-server did not come up on a port of its own in %d attempts", attempt)
		}
	}
}

func tryStartRedis(t *testing.T, bin, password string) (string, bool) {
	t.Helper()
	port := freePort(t)
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
	}
	if password != "" {
		args = append(args, "--requirepass", password)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = os.Stderr // shown only if the test fails or runs with -v
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if !waitForPing(t, addr, password, cmd.Process.Pid, exited) {
		stop()
		return "", false
	}
	t.Cleanup(stop)
	return addr, true
}

// waitForPing waits, bounded, until our server (process pid) answers at
// addr. It reports false when the server exited or another one answered.
func waitForPing(t *testing.T, addr, password string, pid int, exited <-chan struct{}) bool {
	t.Helper()
	client := redis.NewClient(&redis.Options{
		Addr:        addr,
		Password:    password,
		MaxRetries:  -1,
		DialTimeout: 200 * time.Millisecond,
	})
	defer client.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		info, err := client.Info(ctx, "server").Result()
		cancel()
		if err == nil {
			return strings.Contains(info, "process_id:"+strconv.Itoa(pid)+"\r\n")
		}
		select {
		case <-exited:
			return false
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s does not answer: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// prefixes numbers the key prefixes the tests give each store they open.
var prefixes atomic.Int64

func uniquePrefix() string {
	return fmt.Sprintf("test%d:", prefixes.Add(1))
}
