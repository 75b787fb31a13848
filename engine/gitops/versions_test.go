package gitops

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/databus-gateway/databus/engine/gitops/gitopstest"
)

// history writes versions as "short change path [<- old]" lines, with the
// sample's commit names.
func history(s *gitopstest.SampleRepo, vs []Version) string {
	var lines []string
	for _, v := range vs {
		line := fmt.Sprintf("%s %s %s", v.Short, v.Change, v.Path)
		if v.OldPath != "" {
			line += " <- " + v.OldPath
		}
		if v.Hash[:7] != v.Short || v.Author == "" || v.Email == "" || v.Time.IsZero() || v.Message == "" {
			line += fmt.Sprintf(" (incomplete: %+v)", v)
		}
		lines = append(lines, line)
	}
	return names(s, strings.Join(lines, "\n"))
}

func TestVersions(t *testing.T) {
	for _, sub := range []string{"", "ops/config"} {
		t.Run("sub="+sub, func(t *testing.T) {
			s := gitopstest.Sample(t, sub)
			r := open(t, s.Dir)
			tests := []struct{ file, want string }{
				// Follows the rename of C3 back to apis/order.yaml.
				{"apis/orders/create.yaml", "<C3> renamed apis/orders/create.yaml <- apis/order.yaml\n<C2> modified apis/order.yaml\n<C1> added apis/order.yaml"},
				// The old name's own history ends with the rename (a deletion there).
				{"apis/order.yaml", "<C3> deleted apis/order.yaml\n<C2> modified apis/order.yaml\n<C1> added apis/order.yaml"},
				{"apis/stock.yaml", "<C4> deleted apis/stock.yaml\n<C2> added apis/stock.yaml"},
				{"policies/standard.yaml", "<C4> modified policies/standard.yaml\n<C1> added policies/standard.yaml"},
				{"databus.yaml", "<C1> added databus.yaml"},
				{"README.md", "<C4> modified README.md\n<C1> added README.md"},
				{"apis/never.yaml", ""},
			}
			for _, tt := range tests {
				vs, err := r.Versions(tt.file)
				if err != nil {
					t.Fatalf("Versions(%s): %v", tt.file, err)
				}
				if got := history(s, vs); got != tt.want {
					t.Errorf("Versions(%s):\n%s\nwant:\n%s", tt.file, got, tt.want)
				}
			}
			vs, _ := r.Versions("apis/orders/create.yaml")
			if v := vs[1]; v.Author != "Bob Builder" || v.Email != "bob@example.com" || v.Subject() != "Publish order.create with a scoring step" || !v.Time.Equal(gitopstest.Epoch.AddDate(0, 0, 1)) {
				t.Errorf("C2's version: %+v", v)
			}
		})
	}
}

func TestVersionsOfAPI(t *testing.T) {
	s := gitopstest.Sample(t, "")
	r := open(t, s.Dir)
	tests := []struct{ code, version, want string }{
		{"order.create", "v1", "<C3> renamed apis/orders/create.yaml <- apis/order.yaml\n<C2> modified apis/order.yaml\n<C1> added apis/order.yaml"},
		{"order.create", "", "<C3> renamed apis/orders/create.yaml <- apis/order.yaml\n<C2> modified apis/order.yaml\n<C1> added apis/order.yaml"},
		// Deleted at HEAD: found in the history.
		{"stock.reserve", "v1", "<C4> deleted apis/stock.yaml\n<C2> added apis/stock.yaml"},
		{"stock.reserve", "", "<C4> deleted apis/stock.yaml\n<C2> added apis/stock.yaml"},
	}
	for _, tt := range tests {
		vs, err := r.VersionsOfAPI(tt.code, tt.version)
		if err != nil {
			t.Fatalf("VersionsOfAPI(%s, %s): %v", tt.code, tt.version, err)
		}
		if got := history(s, vs); got != tt.want {
			t.Errorf("VersionsOfAPI(%s, %s):\n%s\nwant:\n%s", tt.code, tt.version, got, tt.want)
		}
	}
	for _, tt := range []struct{ code, version string }{{"order.create", "v2"}, {"nosuch", ""}, {"stock.reserve", "v9"}} {
		if _, err := r.VersionsOfAPI(tt.code, tt.version); !errors.Is(err, ErrNotFound) {
			t.Errorf("VersionsOfAPI(%s, %s): %v, want ErrNotFound", tt.code, tt.version, err)
		}
	}

	// On the feature branch order.create has two versions.
	s.Checkout("feature")
	if _, err := r.VersionsOfAPI("order.create", ""); !errors.Is(err, ErrAmbiguous) || !strings.Contains(err.Error(), "v1, v2") {
		t.Errorf("a code with two versions: %v, want ErrAmbiguous naming v1, v2", err)
	}
	vs, err := r.VersionsOfAPI("order.create", "v2")
	if err != nil || history(s, vs) != "<FEATURE> added apis/order-v2.yaml" {
		t.Errorf("order.create:v2 on feature: %s, %v", history(s, vs), err)
	}
}

// A rename with edits is found by content similarity; a file replaced by
// unrelated content is not a rename.
func TestVersionsRenameSimilarity(t *testing.T) {
	b := gitopstest.New(t, "")
	b.Write("apis/a.yaml", gitopstest.OrderV2)
	c1 := b.Commit("add a")
	b.Remove("apis/a.yaml")
	b.Write("apis/b.yaml", strings.Replace(gitopstest.OrderV2, "status: online", "status: offline", 1))
	c2 := b.Commit("rename a to b, take it offline")
	b.Remove("apis/b.yaml")
	b.Write("apis/c.yaml", gitopstest.Stock)
	c3 := b.Commit("replace b by something else")
	r := open(t, b.Dir)
	vs, err := r.Versions("apis/b.yaml")
	if err != nil || len(vs) != 3 || vs[0].Hash != c3 || vs[0].Change != Deleted ||
		vs[1].Hash != c2 || vs[1].Change != Renamed || vs[1].OldPath != "apis/a.yaml" ||
		vs[2].Hash != c1 || vs[2].Change != Added || vs[2].Path != "apis/a.yaml" {
		t.Errorf("Versions(apis/b.yaml) = %+v, %v", vs, err)
	}
	vs, err = r.Versions("apis/c.yaml")
	if err != nil || len(vs) != 1 || vs[0].Change != Added {
		t.Errorf("Versions(apis/c.yaml) = %+v, %v", vs, err)
	}
}

// A rename from outside the config folder starts the history there.
func TestVersionsRenameIntoConfig(t *testing.T) {
	b := gitopstest.New(t, "config")
	b.Write("../drafts/order.yaml", gitopstest.OrderV1)
	b.Commit("draft")
	b.Rename("../drafts/order.yaml", "apis/order.yaml")
	c2 := b.Commit("adopt the draft")
	vs, err := open(t, b.Dir).Versions("apis/order.yaml")
	if err != nil || len(vs) != 1 || vs[0].Hash != c2 || vs[0].Change != Added {
		t.Errorf("Versions = %+v, %v", vs, err)
	}
}
