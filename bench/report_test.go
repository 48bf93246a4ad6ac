package main

import "testing"

func TestSpliceSectionReplacesOnlyItsSection(t *testing.T) {
	const section = "## Customer sync\n\nnew\n"
	for _, c := range []struct{ doc, want string }{
		{"# B\n\n## A\n\na\n", "# B\n\n## A\n\na\n\n" + section},
		{"# B\n\n## Customer sync\n\nold\n", "# B\n\n" + section},
		{"# B\n\n## Customer sync\n\nold\n### sub\n\n## Z\n\nz\n", "# B\n\n" + section + "\n## Z\n\nz\n"},
		{"## Customer sync\n\nold\n## Z\n", section + "\n## Z\n"},
	} {
		if got := spliceSection(c.doc, customerHeading, section); got != c.want {
			t.Errorf("spliceSection(%q)\n got %q\nwant %q", c.doc, got, c.want)
		}
	}
}
