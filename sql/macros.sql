-- Macros the stage SQL shares, created once per stage database (pipeline/stages/sql.py: connect).
--
-- group_key_of(model, service, part): a group's name under the --group-by key (pipeline/grouping.py:
-- the key's values joined by '|', in the order client_id, session_id, model, service), from the
-- request's model and service (nulls already '(none)') and `part` (stg_requests.key_part: the
-- client and/or session id part when the key uses them, else null). Scans group by (model,
-- service, key_part) and name the groups after counting: building the name for every row cost
-- more than the counting.
create or replace macro group_key_of(model, service, part) as
    case
        when getvariable('group_by') = 'all' then 'all'
        else concat_ws('|', part, case when getvariable('group_model') then model end,
                       case when getvariable('group_service') then service end)
    end;

-- The standard normal's CDF and quantile in plain arithmetic, so both engines (Spark SQL has
-- neither) give the same numbers: the session model's lognormal KS and its gaps' normal scores
-- (sql/sessions/session_lognormal.sql, session_rho.sql). Within 2e-16 of scipy.special.ndtr and
-- ndtri in absolute terms over |z| <= 8 (tests/test_session_stats.py).
-- erfc_pos(y), y >= 0.46875: W. J. Cody's rational approximations (SPECFUN CALERF, 1969), with
-- exp(-y^2) split at y rounded down to 1/16 as Cody does (no rounding error from squaring y).
create or replace macro erfc_pos(y) as
    exp(-(floor(y * 16) / 16) * (floor(y * 16) / 16)) * exp(-(y - floor(y * 16) / 16) * (y + floor(y * 16) / 16))
    * case
        when y <= 4 then
            ((((((((2.15311535474403846e-8 * y + 5.64188496988670089e-1) * y + 8.88314979438837594e00) * y
                 + 6.61191906371416295e01) * y + 2.98635138197400131e02) * y + 8.81952221241769090e02) * y
                 + 1.71204761263407058e03) * y + 2.05107837782607147e03) * y + 1.23033935479799725e03)
            / ((((((((y + 1.57449261107098347e01) * y + 1.17693950891312499e02) * y + 5.37181101862009858e02) * y
                 + 1.62138957456669019e03) * y + 3.29079923573345963e03) * y + 4.36261909014324716e03) * y
                 + 3.43936767414372164e03) * y + 1.23033935480374942e03)
        else (5.6418958354775628695e-1 - (1 / (y * y))
              * (((((1.63153871373020978e-2 / (y * y) + 3.05326634961232344e-1) / (y * y) + 3.60344899949804439e-1)
                   / (y * y) + 1.25781726111229246e-1) / (y * y) + 1.60837851487422766e-2) / (y * y)
                 + 6.58749161529837803e-4)
              / (((((1 / (y * y) + 2.56852019228982242e00) / (y * y) + 1.87295284992346725e00) / (y * y)
                   + 5.27905102951428412e-1) / (y * y) + 6.05183413124413191e-2) / (y * y) + 2.33520497626869185e-3)) / y
    end;

-- erf_small(x), |x| <= 0.46875: Cody's erf there.
create or replace macro erf_small(x) as
    x * ((((1.85777706184603153e-1 * x * x + 3.16112374387056560e00) * x * x + 1.13864154151050156e02) * x * x
          + 3.77485237685302021e02) * x * x + 3.20937758913846947e03)
    / ((((x * x + 2.36012909523441209e01) * x * x + 2.44024637934444173e02) * x * x + 1.28261652607737228e03) * x * x
       + 2.84423683343917062e03);

-- normal_cdf(z) = Phi(z) = erfc(-z / sqrt 2) / 2, as scipy's ndtr splits it (erfc past 40 is 0 in
-- doubles: capped there, so Spark's floor, a bigint, cannot overflow).
create or replace macro normal_cdf(z) as
    case
        when abs(z) * 0.7071067811865476 <= 0.46875 then 0.5 + 0.5 * erf_small(z * 0.7071067811865476)
        when z < 0 then 0.5 * erfc_pos(least(-z * 0.7071067811865476, 40))
        else 1 - 0.5 * erfc_pos(least(z * 0.7071067811865476, 40))
    end;

-- normal_quantile_low(p), 0 < p <= 0.5: P. J. Acklam's rational approximation of Phi^-1 (relative
-- error 1.2e-9), to be refined by normal_refine.
create or replace macro normal_quantile_low(p) as
    case
        when p < 0.02425 then
            (((((-7.784894002430293e-03 * sqrt(-2 * ln(p)) - 3.223964580411365e-01) * sqrt(-2 * ln(p))
                - 2.400758277161838e+00) * sqrt(-2 * ln(p)) - 2.549732539343734e+00) * sqrt(-2 * ln(p))
                + 4.374664141464968e+00) * sqrt(-2 * ln(p)) + 2.938163982698783e+00)
            / ((((7.784695709041462e-03 * sqrt(-2 * ln(p)) + 3.224671290700398e-01) * sqrt(-2 * ln(p))
                 + 2.445134137142996e+00) * sqrt(-2 * ln(p)) + 3.754408661907416e+00) * sqrt(-2 * ln(p)) + 1)
        else
            (((((-3.969683028665376e+01 * (p - 0.5) * (p - 0.5) + 2.209460984245205e+02) * (p - 0.5) * (p - 0.5)
                - 2.759285104469687e+02) * (p - 0.5) * (p - 0.5) + 1.383577518672690e+02) * (p - 0.5) * (p - 0.5)
                - 3.066479806614716e+01) * (p - 0.5) * (p - 0.5) + 2.506628277459239e+00) * (p - 0.5)
            / (((((-5.447609879822406e+01 * (p - 0.5) * (p - 0.5) + 1.615858368580409e+02) * (p - 0.5) * (p - 0.5)
                  - 1.556989798598866e+02) * (p - 0.5) * (p - 0.5) + 6.680131188771972e+01) * (p - 0.5) * (p - 0.5)
                  - 1.328068155288572e+01) * (p - 0.5) * (p - 0.5) + 1)
    end;

-- normal_refine(x, p): one Halley step on Phi(x) = p from x (Acklam's; p <= 0.5, so Phi(x) - p
-- has no cancellation against 1).
create or replace macro normal_refine(x, p) as
    x - (normal_cdf(x) - p) * 2.5066282746310002 * exp(x * x / 2)
        / (1 + x * (normal_cdf(x) - p) * 2.5066282746310002 * exp(x * x / 2) / 2);
