-- aos_cus 0.1.0 -> 0.2.0: every schema change of the 0.2.0 wave, in the order it landed.
\echo Use "ALTER EXTENSION aos_cus UPDATE TO '0.2.0'" to load this file. \quit
