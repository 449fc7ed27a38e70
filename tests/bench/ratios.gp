# make bench: how many times better tunnels is than ssh -R / autossh, one
# horizontal bar per metric from the parity line (1×): to the right
# tunnels is better, to the left worse; log scale.
# Called by plot.py:
#   gnuplot -e "datafile='...'; outfile='...'; subtitle='...'; nbars=N;
#               xmin=..; xmax=.." ratios.gp
# Data (tab-separated): index, metric, advantage, capped (1: a lower
# bound, the other side never recovered within the cap), bar label.

set terminal svg size 1100,(nbars * 22 + 160) dynamic font "sans,11" \
    background rgb "white"
set output outfile
set title "tunnels vs ssh -R / autossh: times better (right of 1) or worse (left of 1)\n".subtitle noenhanced
set datafile separator "\t"
set style fill solid 0.85 border -1
set logscale x 10
set xrange [xmin:xmax]
set yrange [-nbars + 0.4:0.6]
set xlabel "tunnels advantage (×, log scale; orange: at least, the other side did not recover)"
set grid xtics
set ytics scale 0 font ",9" noenhanced
set lmargin 58
set key off
set arrow 1 from first 1, graph 0 to first 1, graph 1 nohead lw 2 lc rgb "black"
color(a, capped) = capped > 0 ? 0xE08A00 : (a >= 1 ? 0x2E8B57 : 0xC0392B)
lo(a) = a < 1 ? a : 1
hi(a) = a < 1 ? 1 : a
plot datafile using (1):(-$1):(lo($3)):(hi($3)):(-$1 - 0.35):(-$1 + 0.35):(color($3, $4)):ytic(2) \
         with boxxyerror lc rgb variable, \
     datafile using ($3 >= 1 ? $3 * 1.08 : NaN):(-$1):5 \
         with labels left font ",9" noenhanced, \
     datafile using ($3 < 1 ? $3 / 1.08 : NaN):(-$1):5 \
         with labels right font ",9" noenhanced
