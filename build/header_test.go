package build

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

const diffPart = `diff --git a/fs/proc/cmdline.c b/fs/proc/cmdline.c
index fa762c5fbcb2..0a9f46e1d2c1 100644
--- a/fs/proc/cmdline.c
+++ b/fs/proc/cmdline.c
@@ -6,4 +6,4 @@
 static int cmdline_proc_show(struct seq_file *m, void *v)
 {
-	seq_puts(m, saved_command_line);
+	seq_puts(m, "CVE-2099-0001 in a diff is not the header's");
 	seq_putc(m, '\n');
`

func TestParseHeader(t *testing.T) {
	cases := []struct {
		name string
		text string
		desc string
		cves []string
	}{
		{
			name: "git format-patch",
			text: `From 3b2f8d7a1c5e9f0a4b6c8d2e1f3a5b7c9d0e2f41 Mon Sep 17 00:00:00 2001
From: Jane Developer <jane@example.org>
Date: Tue, 4 Jun 2024 10:12:01 +0200
Subject: [PATCH 2/3] netfilter: nf_tables: reject verdict maps with
 a bad data type (CVE-2024-1086)

nft_verdict_init() allows positive values as drop error; a positive
value is read back as NF_ACCEPT and frees the skb twice.

Reject positive drop errors.

Fixes: f342de4e2f33 ("netfilter: nf_tables: reject QUEUE/DROP verdict parameters")
Link: https://www.cve.org/CVERecord?id=CVE-2024-1085
Signed-off-by: Jane Developer <jane@example.org>
---
 net/netfilter/nf_tables_api.c | 2 +-
 1 file changed, 1 insertion(+), 1 deletion(-)

` + diffPart,
			desc: "netfilter: nf_tables: reject verdict maps with a bad data type (CVE-2024-1086)\n\n" +
				"nft_verdict_init() allows positive values as drop error; a positive\nvalue is read back as NF_ACCEPT and frees the skb twice.\n\nReject positive drop errors.",
			cves: []string{"CVE-2024-1085", "CVE-2024-1086"},
		},
		{
			name: "stable backport",
			text: `From: Greg Kroah-Hartman <gregkh@example.org>
Subject: [PATCH 6.1 012/140] ext4: fix slab-out-of-bounds in ext4_find_extent

commit 8a4f6a0b2d9c1e3f5a7b9c0d2e4f6a8b0c1d3e5f upstream.

A corrupted extent header makes ext4_find_extent() read past the
buffer; check eh_depth first. This is CVE-2023-52619 and
cve-2023-9999 in lower case.

Cc: stable@vger.kernel.org
Signed-off-by: Greg Kroah-Hartman <gregkh@example.org>
---
` + diffPart,
			desc: "ext4: fix slab-out-of-bounds in ext4_find_extent\n\n" +
				"A corrupted extent header makes ext4_find_extent() read past the\nbuffer; check eh_depth first. This is CVE-2023-52619 and\ncve-2023-9999 in lower case.",
			cves: []string{"CVE-2023-9999", "CVE-2023-52619"},
		},
		{
			name: "bracketed upstream commit",
			text: `Subject: [PATCH 5.15] mm: fix a race in the page cache

[ Upstream commit 0123456789abcdef0123456789abcdef01234567 ]

Take the lock before the lookup.

Signed-off-by: A Backporter <b@example.org>
` + diffPart,
			desc: "mm: fix a race in the page cache\n\nTake the lock before the lookup.",
		},
		{
			name: "quilt/DEP-3",
			text: `Description: proc: hide password= values in /proc/cmdline
 The command line is world-readable; mask the values of parameters
 named password=.
 .
 Addresses CVE-2025-0002.
Author: Jane Developer <jane@example.org>
Origin: vendor
Bug-Debian: https://bugs.example.org/12345
Last-Update: 2025-01-02

Index: linux/fs/proc/cmdline.c
===================================================================
` + diffPart,
			desc: "proc: hide password= values in /proc/cmdline\n\nThe command line is world-readable; mask the values of parameters\nnamed password=.\n\nAddresses CVE-2025-0002.",
			cves: []string{"CVE-2025-0002"},
		},
		{
			name: "git show",
			text: `commit 9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d
Author: Jane Developer <jane@example.org>
Date:   Tue Jun 4 10:12:01 2024 +0200

    vfs: fix an overflow in the name check

    A name of PATH_MAX bytes overflowed by one (CVE-2024-31337).

    Signed-off-by: Jane Developer <jane@example.org>

` + diffPart,
			desc: "vfs: fix an overflow in the name check\n\nA name of PATH_MAX bytes overflowed by one (CVE-2024-31337).",
			cves: []string{"CVE-2024-31337"},
		},
		{
			name: "free text",
			text: "Add a line to /proc/meminfo.\n\n" + diffPart,
			desc: "Add a line to /proc/meminfo.",
		},
		{
			name: "plain diff",
			text: diffPart,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := ParseHeader([]byte(c.text))
			if h.Description != c.desc {
				t.Errorf("description\n%q\nwant\n%q", h.Description, c.desc)
			}
			if !slices.Equal(h.CVEs, c.cves) {
				t.Errorf("CVEs %q, want %q", h.CVEs, c.cves)
			}
		})
	}
}

func TestValidCVE(t *testing.T) {
	for in, want := range map[string]string{"CVE-2024-1086": "CVE-2024-1086", "cve-2021-44228": "CVE-2021-44228", "CVE-2024-123456": "CVE-2024-123456"} {
		got, err := ValidCVE(in)
		if err != nil || got != want {
			t.Errorf("ValidCVE(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "CVE-2024-108", "CVE-24-1086", "2024-1086", "CVE-2024-1086x", "GHSA-xxxx", " CVE-2024-1086"} {
		if got, err := ValidCVE(bad); err == nil {
			t.Errorf("ValidCVE(%q) = %q; want an error", bad, got)
		}
	}
}

func TestSortCVEs(t *testing.T) {
	got := SortCVEs([]string{"CVE-2024-10000", "CVE-2023-52619", "CVE-2024-9999", "CVE-2024-9999"})
	want := []string{"CVE-2023-52619", "CVE-2024-9999", "CVE-2024-10000"}
	if !slices.Equal(got, want) {
		t.Errorf("SortCVEs = %q, want %q", got, want)
	}
}

func TestReadPatchesFixes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mail := write("0001-fix.patch", "From: A <a@example.org>\nSubject: [PATCH 1/2] proc: fix one (CVE-2024-9999)\n\nBody one.\n---\n"+diffPart)
	dep3 := write("0002-fix.patch", "Description: ext4: fix two\n Addresses CVE-2024-10000 and CVE-2024-9999.\n\n"+diffPart)
	plain := write("plain.patch", diffPart)
	cases := []struct {
		name    string
		opts    Options
		desc    string
		cves    []string
		wantErr bool
	}{
		{name: "union", opts: Options{Patches: []string{mail, dep3}},
			desc: "proc: fix one (CVE-2024-9999)\n\nBody one.\n\next4: fix two\n\nAddresses CVE-2024-10000 and CVE-2024-9999.",
			cves: []string{"CVE-2024-9999", "CVE-2024-10000"}},
		{name: "flags", opts: Options{Patches: []string{plain, mail}, Description: "Fix one, told.", CVEs: []string{"CVE-2023-0001", "CVE-2024-9999"}},
			desc: "Fix one, told.", cves: []string{"CVE-2023-0001", "CVE-2024-9999"}},
		{name: "plain", opts: Options{Patches: []string{plain}}, cves: []string{}},
		{name: "bad id", opts: Options{Patches: []string{plain}, CVEs: []string{"CVE-2024-1"}}, wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := &builder{opts: c.opts, res: &Result{}}
			err := b.readPatches()
			if c.wantErr {
				if err == nil {
					t.Fatal("no error for a bad CVE id")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.res.Description != c.desc || !slices.Equal(b.res.CVEs, c.cves) || b.res.CVEs == nil {
				t.Errorf("description %q, CVEs %q; want %q, %q", b.res.Description, b.res.CVEs, c.desc, c.cves)
			}
			want := [][2]string{{"kelp.cves", strconv.Itoa(len(c.cves))}}
			if c.desc != "" {
				want = append(want, [2]string{"kelp.description", c.desc})
			}
			for _, id := range c.cves {
				want = append(want, [2]string{"kelp.cve", id})
			}
			if got := b.metadata(); !slices.Equal(got, want) {
				t.Errorf("metadata %q, want %q", got, want)
			}
		})
	}
}
