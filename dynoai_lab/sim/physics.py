"""Engine, intake and drum physics as pure functions.

Every function takes floats or numpy arrays and returns the same, so
tests and analysis code can call them on whole logs. The models are
mean-value models: one value per engine cycle, no crank-angle
resolution. The simulator's compiled time step
(:mod:`dynoai_lab.sim.kernel`) repeats these equations on scalars;
``tests/test_sim_kernel.py`` checks that the two agree.
"""

from __future__ import annotations

import numpy as np

#: Lower heating value of gasoline [J/kg]. Typical textbook value; an
#: estimate for pump fuel, which varies by a few percent.
GASOLINE_LHV = 43.0e6
#: Lambda of best (maximum) torque at fixed air mass [1].
BEST_POWER_LAMBDA = 0.88
#: Ratio of specific heats of the residual exhaust gas [1], an estimate.
EXHAUST_GAMMA = 1.3

# Loss of torque away from best-power lambda: 1 - k (lambda - 0.88)^2,
# steeper on the lean side. Chosen so that stoichiometric mixture gives
# about 4 % less torque than best power; an estimate, not fitted to data.
_LEAN_CURVATURE = 2.5
_RICH_CURVATURE = 1.5
# Lambda outside this range misfires and makes no torque [1].
_MISFIRE_RICH = 0.5
_MISFIRE_LEAN = 1.7
#: Torque loss per squared degree away from MBT spark [1/deg²]: 10°
#: of retard costs about 5 % of torque. An estimate in the range of the
#: spark sweeps in Heywood, Internal Combustion Engine Fundamentals
#: (1988), fig. 9-4 (not opened here; treat as an assumption).
SPARK_LOSS_PER_DEG2 = 5.0e-4


def trapped_air_mass(
    ve_percent, map_kpa, cylinder_volume, intake_temperature_c
):
    """Compute the air mass trapped per cylinder per cycle.

    Parameters
    ----------
    ve_percent : array_like
        True volumetric efficiency [%], referred to manifold conditions.
    map_kpa : array_like
        Manifold absolute pressure [kPa].
    cylinder_volume : float
        Swept volume of one cylinder [m³].
    intake_temperature_c : array_like
        Intake air temperature [°C].

    Returns
    -------
    numpy.ndarray
        Trapped air mass [kg].

    Notes
    -----
    The engine traps air by the same speed-density relation the ECU
    uses to estimate it, with the true VE in place of the table's:
    see :func:`dynoai_lab.ecu.speed_density_air_mass`.
    """
    from dynoai_lab.ecu import speed_density_air_mass

    return speed_density_air_mass(
        ve_percent, map_kpa, cylinder_volume, intake_temperature_c
    )


def lambda_torque_factor(lambda_):
    """Compute indicated torque relative to best-power mixture.

    Parameters
    ----------
    lambda_ : array_like
        Burned air-fuel equivalence ratio, lambda [1].

    Returns
    -------
    numpy.ndarray
        Factor [1], 1 at lambda 0.88, 0.96 at lambda 1.0 and 0 outside
        the misfire limits 0.5 and 1.7.

    Notes
    -----
    .. math:: f(\\lambda) = 1 - k (\\lambda - 0.88)^2,\\quad
              k = 2.5 \\text{ lean}, \\; 1.5 \\text{ rich}

    clipped at 0. The curvatures are estimates.
    """
    lam = np.asarray(lambda_, dtype=float)
    delta = lam - BEST_POWER_LAMBDA
    curvature = np.where(delta > 0, _LEAN_CURVATURE, _RICH_CURVATURE)
    factor = np.clip(1.0 - curvature * delta**2, 0.0, 1.0)
    burning = (lam >= _MISFIRE_RICH) & (lam <= _MISFIRE_LEAN)
    return np.where(burning, factor, 0.0)


def indicated_work(
    air_mass, lambda_, indicated_efficiency, stoichiometric_afr=14.7
):
    """Compute indicated work per cylinder per cycle.

    Parameters
    ----------
    air_mass : array_like
        Trapped air mass [kg].
    lambda_ : array_like
        Burned lambda [1].
    indicated_efficiency : float
        Indicated fuel-conversion efficiency at best-power lambda [1].
    stoichiometric_afr : float
        Stoichiometric air-fuel ratio [1].

    Returns
    -------
    numpy.ndarray
        Indicated work [J].

    Notes
    -----
    Torque at best power is limited by air, so the work is referred to
    the fuel that the air could burn:

    .. math:: W_i = m_{air} \\frac{Q_{LHV}}{AFR_{st}} \\eta_i f(\\lambda)

    with :math:`Q_{LHV}` = 43 MJ/kg and :math:`f` from
    :func:`lambda_torque_factor`.
    """
    return (
        np.asarray(air_mass, float)
        * (GASOLINE_LHV / stoichiometric_afr)
        * indicated_efficiency
        * lambda_torque_factor(lambda_)
    )


def friction_mean_effective_pressure(rpm, stroke):
    """Compute friction mean effective pressure from mean piston speed.

    Parameters
    ----------
    rpm : array_like
        Engine speed [rpm].
    stroke : float
        Piston stroke [m].

    Returns
    -------
    numpy.ndarray
        FMEP [kPa], excluding pumping.

    Notes
    -----
    With mean piston speed :math:`\\bar S_p = 2 s n / 60` [m/s]:

    .. math:: fmep = 60 + 4 \\bar S_p + 0.2 \\bar S_p^2 \\; \\text{kPa}

    The coefficients are estimates. They give about 2 bar at 19 m/s,
    an M8 at 5000 rpm.
    """
    piston_speed = 2.0 * stroke * np.asarray(rpm, float) / 60.0
    return 60.0 + 4.0 * piston_speed + 0.2 * piston_speed**2


def pumping_mean_effective_pressure(map_kpa, exhaust_pressure_kpa):
    """Compute pumping mean effective pressure [kPa].

    Parameters
    ----------
    map_kpa : array_like
        Manifold absolute pressure [kPa].
    exhaust_pressure_kpa : array_like
        Exhaust back pressure [kPa], about barometric.

    Returns
    -------
    numpy.ndarray
        PMEP [kPa], the gas-exchange work per swept volume.

    Notes
    -----
    .. math:: pmep = p_{exh} - p_{MAP}

    Positive values are work taken from the crank. At wide-open
    throttle only the small intake loss remains.
    """
    return np.asarray(exhaust_pressure_kpa, float) - np.asarray(map_kpa, float)


def brake_torque(
    total_indicated_work,
    rpm,
    map_kpa,
    ambient_kpa,
    *,
    displacement,
    stroke,
    exhaust_kpa=None,
):
    """Compute crankshaft brake torque of a four-stroke engine.

    Parameters
    ----------
    total_indicated_work : array_like
        Indicated work of all cylinders in one cycle [J].
    rpm : array_like
        Engine speed [rpm].
    map_kpa : array_like
        Manifold absolute pressure [kPa].
    ambient_kpa : array_like
        Barometric pressure [kPa].
    displacement : float
        Total swept volume [m³].
    stroke : float
        Piston stroke [m].
    exhaust_kpa : array_like, optional
        Exhaust back pressure [kPa] (:func:`exhaust_back_pressure`);
        barometric pressure when None.

    Returns
    -------
    numpy.ndarray
        Brake torque [N·m].

    Notes
    -----
    A four-stroke cycle takes two revolutions, :math:`4\\pi` rad:

    .. math:: T_b = \\frac{W_i - (fmep + pmep) V_d}{4 \\pi}
    """
    if exhaust_kpa is None:
        exhaust_kpa = ambient_kpa
    mep_kpa = friction_mean_effective_pressure(
        rpm, stroke
    ) + pumping_mean_effective_pressure(map_kpa, exhaust_kpa)
    loss_work = mep_kpa * 1000.0 * displacement
    return (np.asarray(total_indicated_work, float) - loss_work) / (
        4.0 * np.pi
    )


def throttle_area_fraction(throttle_percent, leak_fraction):
    """Compute effective throttle flow area relative to wide open.

    Parameters
    ----------
    throttle_percent : array_like
        Throttle position [%], 0 closed to 100 wide open.
    leak_fraction : float
        Flow area with the plate closed (idle air, plate clearance)
        relative to wide open [1].

    Returns
    -------
    numpy.ndarray
        Area fraction [1], from `leak_fraction` to 1.

    Notes
    -----
    A butterfly's open area grows as :math:`1 - \\cos\\theta` of its
    angle; the throttle position is taken as proportional to the angle
    from closed to 90°:

    .. math:: a = a_0 + (1 - a_0)(1 - \\cos(\\tfrac{\\pi}{2}
              \\tfrac{TPS}{100}))
    """
    opening = np.clip(np.asarray(throttle_percent, float), 0.0, 100.0)
    geometric = 1.0 - np.cos(0.5 * np.pi * opening / 100.0)
    return leak_fraction + (1.0 - leak_fraction) * geometric


def static_manifold_pressure(
    throttle_percent, rpm, ambient_kpa, *, throttle_flow_rpm, leak_fraction
):
    """Compute steady-state MAP from throttle and engine speed.

    Parameters
    ----------
    throttle_percent : array_like
        Throttle position [%].
    rpm : array_like
        Engine speed [rpm].
    ambient_kpa : array_like
        Barometric pressure [kPa].
    throttle_flow_rpm : float
        Engine speed [rpm] at which the wide-open throttle flow
        capacity equals the engine's pumping demand at MAP ratio
        :math:`1/\\sqrt 2`; larger means a freer intake.
    leak_fraction : float
        Closed-throttle flow area relative to wide open [1].

    Returns
    -------
    numpy.ndarray
        Manifold absolute pressure [kPa].

    Notes
    -----
    Throttle flow is approximated as :math:`\\dot m_{th} \\propto a
    \\, p_a \\sqrt{1 - r^2}` with :math:`r = p_{MAP}/p_a`, and the
    engine's demand as :math:`\\dot m_e \\propto r \\, p_a n`. Equating
    them gives a closed form:

    .. math:: g = a \\frac{n_{flow}}{n}, \\qquad
              p_{MAP} = p_a \\frac{g}{\\sqrt{1 + g^2}}

    The ellipse :math:`\\sqrt{1 - r^2}` replaces the compressible
    orifice flow function. Like it, the ellipse gives no flow at
    :math:`r = 1` and flow nearly independent of :math:`r` at low
    :math:`r`, where a real throttle chokes. At wide
    open throttle the formula leaves a small intake loss that grows
    with rpm, about 3 % of barometric at the rated-power speed when
    `throttle_flow_rpm` is four times that speed.
    """
    area = throttle_area_fraction(throttle_percent, leak_fraction)
    rpm = np.maximum(np.asarray(rpm, float), 1.0)
    g = area * throttle_flow_rpm / rpm
    return np.asarray(ambient_kpa, float) * g / np.sqrt(1.0 + g * g)


def manifold_time_constant(rpm, *, manifold_volume, displacement):
    """Compute the first-order filling time constant of the intake.

    Parameters
    ----------
    rpm : array_like
        Engine speed [rpm].
    manifold_volume : float
        Volume between throttle and intake valves [m³].
    displacement : float
        Total swept volume [m³].

    Returns
    -------
    numpy.ndarray
        Time constant [s].

    Notes
    -----
    The engine swallows :math:`V_d n / 120` of manifold gas per second
    (unit VE), so the manifold refills in about

    .. math:: \\tau = \\frac{V_m}{V_d} \\frac{120}{n}
    """
    rpm = np.maximum(np.asarray(rpm, float), 100.0)
    return manifold_volume / displacement * 120.0 / rpm


def residual_gas_factor(map_kpa, compression_ratio, exhaust_kpa=103.0):
    """Compute the loss of fresh charge to residual exhaust gas.

    Parameters
    ----------
    map_kpa : array_like
        Manifold absolute pressure [kPa].
    compression_ratio : float
        Geometric compression ratio [1].
    exhaust_kpa : float
        Exhaust pressure at valve overlap [kPa].

    Returns
    -------
    numpy.ndarray
        Fresh-charge fraction [1], 1 when MAP equals exhaust pressure and
        falling at low MAP.

    Notes
    -----
    Exhaust left in the clearance volume :math:`V_c` at
    :math:`p_{exh}` expands isentropically to MAP before fresh charge
    enters, so the fresh charge fills
    :math:`V_c + V_d - V_c (p_{exh}/p_{MAP})^{1/\\gamma}`. Divided by
    :math:`V_d`, with :math:`r_c = (V_c + V_d)/V_c`:

    .. math:: \\eta = \\frac{r_c - (p_{exh}/p_{MAP})^{1/\\gamma}}
              {r_c - 1}

    clipped at 0.05 so that very low MAP still traps a little air.
    """
    pressure_ratio = exhaust_kpa / np.maximum(np.asarray(map_kpa, float), 1)
    expansion = pressure_ratio ** (1.0 / EXHAUST_GAMMA)
    fraction = (compression_ratio - expansion) / (compression_ratio - 1.0)
    return np.clip(fraction, 0.05, None)


def saturation_vapour_pressure(temperature_c):
    """Compute saturation vapour pressure of water over liquid water.

    Parameters
    ----------
    temperature_c : array_like
        Air temperature [°C].

    Returns
    -------
    numpy.ndarray
        Saturation vapour pressure [kPa].

    Notes
    -----
    Magnus form with the Sonntag (1990) coefficients, the version the
    WMO recommends:

    .. math:: e_s = 0.6112 \\exp\\left(\\frac{17.62 \\, T}
              {243.12 + T}\\right)

    References
    ----------
    .. [1] D. Sonntag (1990), Important new values of the physical
       constants of 1986, vapour pressure formulations based on the
       ITS-90 and psychrometric formulae. Z. Meteorol. 70, 340-344;
       coefficients as given in the documentation of the R package
       bigleaf, ``Esat.slope``.
    """
    t = np.asarray(temperature_c, float)
    return 0.6112 * np.exp(17.62 * t / (243.12 + t))


def dry_air_fraction(ambient_kpa, ambient_temperature_c, relative_humidity):
    """Compute the mole fraction of dry air in humid ambient air.

    Parameters
    ----------
    ambient_kpa : array_like
        Barometric pressure [kPa].
    ambient_temperature_c : array_like
        Air temperature [°C].
    relative_humidity : array_like
        Relative humidity [%].

    Returns
    -------
    numpy.ndarray
        :math:`1 - p_v / p` [1]; a speed-density ECU that assumes dry
        air over-counts the oxygen-carrying air by this factor.
    """
    vapour = (
        np.asarray(relative_humidity, float)
        / 100.0
        * saturation_vapour_pressure(ambient_temperature_c)
    )
    return 1.0 - vapour / np.asarray(ambient_kpa, float)


def drum_inertia_power(inertia, drum_omega, drum_alpha):
    """Compute the power that accelerates the dyno drum.

    Parameters
    ----------
    inertia : float
        Drum moment of inertia [kg·m²].
    drum_omega : array_like
        Drum angular speed [rad/s].
    drum_alpha : array_like
        Drum angular acceleration [rad/s²].

    Returns
    -------
    numpy.ndarray
        Power [W].

    Notes
    -----
    .. math:: P = I \\alpha \\omega
    """
    return (
        inertia * np.asarray(drum_alpha, float) * np.asarray(drum_omega, float)
    )


def drum_loss_torque(drum_omega, *, bearing_torque, windage_coefficient):
    """Compute drum bearing and windage loss torque.

    Parameters
    ----------
    drum_omega : array_like
        Drum angular speed [rad/s], not negative.
    bearing_torque : float
        Speed-independent bearing drag [N·m].
    windage_coefficient : float
        Aerodynamic drag coefficient of the drum [N·m·s²].

    Returns
    -------
    numpy.ndarray
        Loss torque [N·m] opposing rotation.

    Notes
    -----
    .. math:: T_{loss} = T_0 + c_w \\omega^2
    """
    omega = np.asarray(drum_omega, float)
    return bearing_torque + windage_coefficient * omega * omega


def mbt_spark_advance(rpm, map_kpa):
    """Estimate minimum advance for best torque (MBT).

    Parameters
    ----------
    rpm : array_like
        Engine speed [rpm].
    map_kpa : array_like
        Manifold absolute pressure [kPa].

    Returns
    -------
    numpy.ndarray
        Spark advance before top dead centre [deg], 15 to 45.

    Notes
    -----
    ``θ_MBT = 15 + 15 · min(n / 5000, 1) + 15 · (1 − MAP / 100)``:
    burn time is roughly fixed, so more crank angle is needed at high
    speed, and a thinner charge at low MAP burns slower. The shape is
    the usual one; the numbers are estimates for a large-bore
    two-valve V-twin.
    """
    rpm = np.asarray(rpm, float)
    load = np.clip(np.asarray(map_kpa, float) / 100.0, 0.0, 1.0)
    speed = np.clip(rpm / 5000.0, 0.0, 1.0)
    return 15.0 + 15.0 * speed + 15.0 * (1.0 - load)


def spark_torque_factor(advance, mbt_advance):
    """Compute torque relative to MBT spark timing.

    Parameters
    ----------
    advance : array_like
        Spark advance the ECU fires at [deg].
    mbt_advance : array_like
        MBT advance at the same operating point [deg].

    Returns
    -------
    numpy.ndarray
        Factor [1]: 1 at MBT, ``1 − k (θ − θ_MBT)²`` with
        ``k = SPARK_LOSS_PER_DEG2``, clipped at 0.
    """
    offset = np.asarray(advance, float) - np.asarray(mbt_advance, float)
    return np.clip(1.0 - SPARK_LOSS_PER_DEG2 * offset**2, 0.0, 1.0)


def knock_border_advance(
    rpm,
    map_kpa,
    intake_temperature_c,
    *,
    rated_power_rpm,
    knock_margin,
    cylinder_offset=0.0,
):
    """Estimate the spark advance above which the engine knocks.

    Parameters
    ----------
    rpm : array_like
        Engine speed [rpm].
    map_kpa : array_like
        Manifold absolute pressure [kPa].
    intake_temperature_c : array_like
        Intake air temperature [°C].
    rated_power_rpm : float
        Engine speed of rated power [rpm], which scales the speed term.
    knock_margin : float
        Border minus MBT advance at wide-open throttle, zero speed and
        35 °C intake air [deg]; negative for an engine that cannot
        reach MBT at full load.
    cylinder_offset : float
        Added to the border of one cylinder [deg], for example -1.5 for
        the hotter rear cylinder of an air-cooled V-twin.

    Returns
    -------
    numpy.ndarray
        Knock border advance [deg] before top dead centre.

    Notes
    -----
    .. math:: \\theta_{KB} = \\theta_{MBT} + m_0 + 40 (1 - p/100)
              + 6 \\, n / n_P - 0.1 (T_{in} - 35) + m_{cyl}

    End gas autoignites more readily at high charge density (high MAP,
    hot intake air) and with more time per cycle (low speed). The
    shape follows those trends; all coefficients are estimates, not
    fitted to any engine or fuel.
    """
    load = np.clip(np.asarray(map_kpa, float) / 100.0, 0.0, 1.2)
    speed = np.asarray(rpm, float) / rated_power_rpm
    hot = np.asarray(intake_temperature_c, float) - 35.0
    margin = (
        knock_margin
        + 40.0 * (1.0 - load)
        + 6.0 * speed
        - 0.1 * hot
        + cylinder_offset
    )
    return mbt_spark_advance(rpm, map_kpa) + margin


def exhaust_back_pressure(
    ambient_kpa, rpm, map_kpa, *, rated_power_rpm, rated_back_pressure
):
    """Estimate exhaust back pressure from the exhaust mass flow.

    Parameters
    ----------
    ambient_kpa : array_like
        Barometric pressure [kPa].
    rpm : array_like
        Engine speed [rpm].
    map_kpa : array_like
        Manifold absolute pressure [kPa].
    rated_power_rpm : float
        Engine speed of rated power [rpm].
    rated_back_pressure : float
        Back pressure above barometric at wide-open throttle and rated
        power speed [kPa].

    Returns
    -------
    numpy.ndarray
        Absolute exhaust pressure [kPa].

    Notes
    -----
    A muffler's pressure drop grows with the square of the flow, and
    the flow with speed times MAP:

    .. math:: p_{exh} = p_a + \\Delta p_P \\left(\\frac{n \\, p}
              {n_P \\, p_a}\\right)^2
    """
    ambient = np.asarray(ambient_kpa, float)
    flow = np.asarray(rpm, float) * np.asarray(map_kpa, float)
    relative = flow / (rated_power_rpm * ambient)
    return ambient + rated_back_pressure * relative * relative


def manifold_pressure_rate(
    map_kpa,
    throttle_percent,
    rpm,
    ambient_kpa,
    *,
    throttle_flow_rpm,
    leak_fraction,
    manifold_volume,
    displacement,
):
    """Compute the rate of change of MAP from throttle and engine flow.

    Parameters
    ----------
    map_kpa : array_like
        Manifold absolute pressure [kPa].
    throttle_percent : array_like
        Throttle position [%].
    rpm : array_like
        Engine speed [rpm].
    ambient_kpa : array_like
        Barometric pressure [kPa].
    throttle_flow_rpm : float
        Intake flow capacity, see :func:`static_manifold_pressure`
        [rpm].
    leak_fraction : float
        Closed-throttle flow area relative to wide open [1].
    manifold_volume : float
        Volume between throttle and intake valves [m³].
    displacement : float
        Total swept volume [m³].

    Returns
    -------
    numpy.ndarray
        :math:`dp/dt` [kPa/s].

    Notes
    -----
    Mass balance of the isothermal manifold,
    :math:`V_m \\dot p / (R T) = \\dot m_{th} - \\dot m_e`, with the
    throttle and engine flows of :func:`static_manifold_pressure`:

    .. math:: \\frac{dp}{dt} = \\frac{V_d}{120 \\, V_m}
              \\left(a \\, n_{flow} \\, p_a \\sqrt{1 - r^2}
              - n \\, p\\right), \\qquad r = p / p_a

    Its rest point is :func:`static_manifold_pressure`, so MAP lags
    the throttle and never exceeds barometric pressure. The engine's
    demand is taken at unit VE, as in the static model.
    """
    ambient = np.asarray(ambient_kpa, float)
    pressure = np.asarray(map_kpa, float)
    ratio = np.clip(pressure / ambient, 0.0, 1.0)
    area = throttle_area_fraction(throttle_percent, leak_fraction)
    inflow = area * throttle_flow_rpm * ambient * np.sqrt(1.0 - ratio**2)
    outflow = np.maximum(np.asarray(rpm, float), 1.0) * pressure
    return displacement / (120.0 * manifold_volume) * (inflow - outflow)


def wall_film_fraction(map_kpa, *, film_fraction):
    """Estimate the share of injected fuel that lands on the port wall.

    Parameters
    ----------
    map_kpa : array_like
        Manifold absolute pressure [kPa].
    film_fraction : float
        Share at 100 kPa [1].

    Returns
    -------
    numpy.ndarray
        X of the x-tau model [1].

    Notes
    -----
    :math:`X = X_{100} (0.5 + 0.5 \\, p/100)`: at low MAP more fuel
    flashes off before it reaches the wall. The 0.5 split is an
    estimate of the usual trend.
    """
    load = np.clip(np.asarray(map_kpa, float) / 100.0, 0.0, 1.2)
    return film_fraction * (0.5 + 0.5 * load)


def wall_film_time_constant(rpm, *, film_time_constant):
    """Estimate the evaporation time constant of the port wall film.

    Parameters
    ----------
    rpm : array_like
        Engine speed [rpm].
    film_time_constant : float
        Time constant at 1000 rpm [s].

    Returns
    -------
    numpy.ndarray
        Tau of the x-tau model [s].

    Notes
    -----
    :math:`\\tau = \\tau_{1000} \\sqrt{1000 / n}`: faster port flow
    strips the film sooner. The exponent is an estimate.
    """
    rpm = np.maximum(np.asarray(rpm, float), 100.0)
    return film_time_constant * np.sqrt(1000.0 / rpm)


def wall_film_step(film, injected_rate, fraction, time_constant, step):
    """Advance the port wall film of the x-tau model by one time step.

    Parameters
    ----------
    film : array_like
        Fuel on the wall at the start of the step [kg].
    injected_rate : array_like
        Injected fuel flow into the port [kg/s].
    fraction : array_like
        Share X of injected fuel that lands on the wall [1].
    time_constant : array_like
        Film evaporation time constant tau [s].
    step : float
        Time step [s].

    Returns
    -------
    delivered_rate : numpy.ndarray
        Fuel flow into the cylinder at the start of the step [kg/s].
    film : numpy.ndarray
        Film at the end of the step [kg].

    Notes
    -----
    The x-tau wall-wetting model:

    .. math:: \\dot M = X \\dot m_{inj} - M/\\tau, \\qquad
              \\dot m_{cyl} = (1 - X) \\dot m_{inj} + M/\\tau

    The film is advanced exactly for constant injection over the step.
    In steady state :math:`M = X \\tau \\dot m_{inj}` and the cylinder
    gets exactly what was injected.
    """
    film = np.asarray(film, float)
    rate = np.asarray(injected_rate, float)
    tau = np.asarray(time_constant, float)
    delivered = (1.0 - fraction) * rate + film / tau
    settled = fraction * rate * tau
    decay = np.exp(-step / tau)
    return delivered, settled + (film - settled) * decay


def injector_pulse_width(fuel_mass, rpm, *, flow_rate, dead_time):
    """Compute the injector pulse that meters a fuel mass per cycle.

    Parameters
    ----------
    fuel_mass : array_like
        Fuel per cylinder per cycle [kg]; 0 or less gives no pulse.
    rpm : array_like
        Engine speed [rpm]; the pulse cannot exceed one cycle.
    flow_rate : float
        Static flow of the injector [kg/s].
    dead_time : float
        Opening delay during which no fuel flows [s].

    Returns
    -------
    numpy.ndarray
        Pulse width [s], 0 for no fuel.

    Notes
    -----
    .. math:: t_{inj} = \\min\\left(\\frac{m_f}{\\dot m_{inj}} + t_0,
              \\frac{120}{n}\\right)
    """
    mass = np.asarray(fuel_mass, float)
    cycle = 120.0 / np.maximum(np.asarray(rpm, float), 1.0)
    pulse = np.minimum(mass / flow_rate + dead_time, cycle)
    return np.where(mass > 0.0, pulse, 0.0)


def injected_fuel_mass(pulse_width, *, flow_rate, dead_time):
    """Compute the fuel an injector delivers in one pulse [kg].

    ``flow_rate · max(pulse_width − dead_time, 0)`` with `pulse_width`
    and `dead_time` [s] and `flow_rate` [kg/s].
    """
    open_time = np.maximum(np.asarray(pulse_width, float) - dead_time, 0.0)
    return flow_rate * open_time
