package ui

import (
	"strconv"
	"time"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/metrics"
	"github.com/databus-gateway/databus/engine/store"
)

// The diagrams are laid out here, in numbers; the templates draw them.

func (u *UI) traffic() metrics.Window {
	if u.src.Traffic == nil {
		return metrics.Window{}
	}
	return u.src.Traffic(u.src.Now())
}

// chart is the requests-and-errors bar chart of the last hour.
type chart struct {
	Width, Height int
	Max           int
	Bars          []bar
	Start, End    string
}

type bar struct {
	X, W, ReqY, ReqH, ErrY, ErrH int
	Title                        string
}

func chartOf(minutes []metrics.Minute) chart {
	const w, h, bw = 600, 120, 10
	c := chart{Width: w, Height: h}
	for _, m := range minutes {
		c.Max = max(c.Max, m.Requests)
	}
	scale := func(n int) int {
		if c.Max == 0 {
			return 0
		}
		return n * (h - 10) / c.Max
	}
	for i, m := range minutes {
		rh, eh := scale(m.Requests), scale(m.Errors)
		if m.Requests > 0 && rh == 0 {
			rh = 1
		}
		if m.Errors > 0 && eh == 0 {
			eh = 1
		}
		c.Bars = append(c.Bars, bar{
			X: i * bw, W: bw - 2, ReqY: h - rh, ReqH: rh, ErrY: h - eh, ErrH: eh,
			Title: m.Start.Local().Format("15:04") + ": " + strconv.Itoa(m.Requests) + " requests, " + strconv.Itoa(m.Errors) + " errors",
		})
	}
	if len(minutes) > 0 {
		c.Start = minutes[0].Start.Local().Format("15:04")
		c.End = minutes[len(minutes)-1].Start.Add(time.Minute).Local().Format("15:04")
	}
	return c
}

// flowDiagram is an API's steps top to bottom: start → steps → end.
type flowDiagram struct {
	Width, Height int
	Nodes         []flowNode
	Edges         []flowEdge
}

type flowNode struct {
	ID, Type, When, Target, OnError string
	X, Y, W, H                      int
	TextX, WhenY, TargetY           int
	Terminal                        bool // start or end: drawn round
}

type flowEdge struct{ X, Y1, Y2 int }

const (
	flowW     = 520
	nodeH     = 62
	termH     = 34
	flowGap   = 26
	flowPad   = 10
	maxLabel  = 64
	flowWidth = flowW + 2*flowPad
)

func clip(s string) string {
	r := []rune(s)
	if len(r) <= maxLabel {
		return s
	}
	return string(r[:maxLabel-1]) + "…"
}

func flowOf(a *config.Api) flowDiagram {
	steps := a.Steps
	if len(steps) == 0 || steps[0].Type != "start" {
		steps = append([]config.Step{{ID: "start", Type: "start"}}, steps...)
	}
	if steps[len(steps)-1].Type != "end" {
		steps = append(steps, config.Step{ID: "end", Type: "end"})
	}
	d := flowDiagram{Width: flowWidth}
	y := flowPad
	for i, s := range steps {
		n := flowNode{ID: s.ID, Type: s.Type, When: clip(s.When), Target: clip(target(s)),
			X: flowPad, Y: y, W: flowW, H: nodeH, TextX: flowPad + 14, WhenY: y + 38, TargetY: y + 38}
		if s.OnError != "" && s.OnError != "fail" {
			n.OnError = s.OnError // the default, fail, goes unsaid
		}
		if n.When != "" {
			n.TargetY = y + 55
		}
		if s.Type == "start" || s.Type == "end" {
			n.Terminal, n.H, n.X, n.W = true, termH, flowPad+flowW/2-90, 180
			n.TextX = flowPad + flowW/2
		}
		if i > 0 {
			d.Edges = append(d.Edges, flowEdge{X: flowPad + flowW/2, Y1: y - flowGap, Y2: y - 2})
		}
		d.Nodes = append(d.Nodes, n)
		y += n.H + flowGap
	}
	d.Height = y - flowGap + flowPad
	return d
}

// timeline is a record's step results, one row each, bars placed one
// after another by their elapsed time.
type timeline struct {
	Width, Height int
	Steps         []timelineStep
	TotalMs       string
}

type timelineStep struct {
	store.StepRecord
	Y, BarX, BarW, TextY int
	Class                string
	Label                string
}

func timelineOf(steps []store.StepRecord) timeline {
	const labelW, barArea, rowH = 220, 380, 26
	t := timeline{Width: labelW + barArea + 20}
	total := 0.0
	for _, s := range steps {
		total += s.ElapsedMs
	}
	t.TotalMs = formatMs(total)
	offset := 0.0
	for i, s := range steps {
		x, w := 0, 2
		if total > 0 {
			x = int(offset / total * barArea)
			w = max(2, int(s.ElapsedMs/total*barArea))
		}
		offset += s.ElapsedMs
		cls := "ok"
		switch {
		case s.Error != "":
			cls = "failed"
		case s.Skipped:
			cls = "skipped"
		}
		label := s.ID + " (" + s.Type + ")"
		t.Steps = append(t.Steps, timelineStep{StepRecord: s, Y: 8 + i*rowH, TextY: 8 + i*rowH + 14,
			BarX: labelW + x, BarW: min(w, barArea-x+2), Class: cls, Label: clip(label)})
	}
	t.Height = 16 + len(steps)*rowH
	return t
}
