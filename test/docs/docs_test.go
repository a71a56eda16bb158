// Package docs runs the user documentation: every shell block of a
// walk-through is executed against real atoll-cp and atollctl binaries, and
// the text block after it must appear in what it printed.
package docs

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/test/framework"
)

// block is one fenced code block of a markdown page.
type block struct {
	lang string
	args []string
	body string
	line int
}

func parseBlocks(t *testing.T, path string) []block {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var blocks []block
	var cur *block
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			if cur == nil {
				fields := strings.Fields(strings.TrimPrefix(line, "```"))
				cur = &block{line: n}
				if len(fields) > 0 {
					cur.lang, cur.args = fields[0], fields[1:]
				}
			} else {
				blocks = append(blocks, *cur)
				cur = nil
			}
			continue
		}
		if cur != nil {
			cur.body += line + "\n"
		}
	}
	require.NoError(t, sc.Err())
	require.Nil(t, cur, "%s: unterminated code block", path)
	return blocks
}

func hasArg(b block, arg string) bool {
	for _, a := range b.args {
		if a == arg {
			return true
		}
	}
	return false
}

var (
	spaces = regexp.MustCompile(`\s+`)
	ages   = regexp.MustCompile(`\s\d+(s|m|h|d|y)(\s|$)`)
)

// normalize collapses whitespace and drops AGE values, which depend on time.
func normalize(s string) string {
	s = ages.ReplaceAllString(" "+s+" ", " ")
	return strings.TrimSpace(spaces.ReplaceAllString(s, " "))
}

// runPage executes the blocks of one markdown page.
func runPage(t *testing.T, page string) {
	bin := bins.Dir(t)
	cp := framework.StartControlPlane(t, &bins)
	replacer := strings.NewReplacer(
		"localhost:5681", strings.TrimPrefix(cp.API, "http://"),
		"localhost:5678", cp.DPServer,
		"~/.atoll", cp.WorkDir,
	)
	work, home := t.TempDir(), t.TempDir()
	blocks := parseBlocks(t, page)

	var lastOutput string
	var lastLine int
	ran := 0
	for _, b := range blocks {
		switch {
		case b.lang == "yaml" && len(b.args) > 0 && strings.HasPrefix(b.args[0], "file="):
			name := strings.TrimPrefix(b.args[0], "file=")
			require.NoError(t, os.WriteFile(filepath.Join(work, name), []byte(b.body), 0o644))
		case b.lang == "sh" && !hasArg(b, "skip"):
			script := replacer.Replace(b.body)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			cmd := exec.CommandContext(ctx, "bash", "-eo", "pipefail", "-c", script)
			cmd.Dir = work
			// Each block runs in its own process group, so what it leaves
			// running in the background is stopped when the page is done.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "HOME="+home)
			out, err := cmd.CombinedOutput()
			cancel()
			if cmd.Process != nil {
				pgid := cmd.Process.Pid
				t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGTERM) })
			}
			if hasArg(b, "fails") {
				require.Error(t, err, "%s:%d: the block should fail; output:\n%s", page, b.line, out)
			} else {
				require.NoError(t, err, "%s:%d: the block failed; output:\n%s", page, b.line, out)
			}
			lastOutput, lastLine = string(out), b.line
			ran++
		case b.lang == "text" && lastLine > 0:
			got := normalize(lastOutput)
			for _, want := range strings.Split(strings.TrimSpace(b.body), "\n") {
				require.Contains(t, got, normalize(want),
					"%s:%d: expected output line not printed by the block at line %d; it printed:\n%s", page, b.line, lastLine, lastOutput)
			}
			lastLine = 0
		}
	}
	require.Positive(t, ran, "%s has no runnable blocks", page)
}

var bins framework.Binaries

func TestMain(m *testing.M) {
	code := m.Run()
	bins.Cleanup()
	os.Exit(code)
}

func TestGettingStarted(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed by docs/getting-started.md; install it (apt-get install -y curl)")
	}
	runPage(t, "../../docs/getting-started.md")
}

func TestDataplanes(t *testing.T) {
	runPage(t, "../../docs/dataplanes.md")
}
