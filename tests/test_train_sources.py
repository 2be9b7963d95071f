"""``fluxlens train`` on a FLUXNET folder: the folder is ingested as a station network first
(models read only through the catalog), once; a site list locates and restricts the sites."""

import pytest

from catalog import api
from catalog.errors import InputError, StoreConflictError
from data_prep.site_lists import read_sites_file
from fluxlens import cli, train_sources
from models import training_table as T


def test_sites_file_locates_sites_of_a_folder(shared_data, tmp_path, data_dir):
    folder = shared_data / "fluxnet2015_monthly"
    listed = tmp_path / "sites.csv"
    listed.write_text("site_id,lat,lon,igbp\nAT-Neu,47.2,11.3,GRA\nBE-Vie,,,\n")
    network = train_sources.network_of(str(folder))
    assert network == "fluxnet2015_monthly" and len(api.sites(network)) == 176
    table = T.build(network, site_list=read_sites_file(listed))
    assert set(table["site_id"]) == {"AT-Neu", "BE-Vie"}
    neu = table[table["site_id"] == "AT-Neu"]
    assert (neu["lat"] == 47.2).all() and (neu["lon"] == 11.3).all()  # the list's coordinates
    vie = table[table["site_id"] == "BE-Vie"]
    assert vie["lat"].iloc[0] == pytest.approx(50.30493, abs=1e-4)  # the folder's site list
    listed.write_text("site_id\nAT-Neu\nZZ-Top\n")
    with pytest.raises(InputError, match=r"sites \['ZZ-Top'\]"):
        T.build(network, site_list=read_sites_file(listed))


def test_folder_ingested_once_and_named(shared_data, tmp_path, data_dir):
    folder = shared_data / "fluxnet2015_monthly"
    first = train_sources.network_of(str(folder), name="mm")
    store_dir = api.network_dir("mm")
    assert train_sources.network_of(str(folder), name="mm") == first == "mm"
    assert api.network_dir("mm") == store_dir  # the same files again: nothing rewritten
    assert train_sources.network_of("fluxnet2015_monthly") == "fluxnet2015_monthly"  # shared-data name
    assert set(api.list_networks()) == {"mm", "fluxnet2015_monthly"}
    other = tmp_path / "other"
    other.mkdir()
    for path in (next(folder.glob("FLX_AT-Neu_*.csv")), folder / "FluxNET_sites.csv"):
        (other / path.name).write_bytes(path.read_bytes())
    with pytest.raises(StoreConflictError, match="already exists"):
        train_sources.network_of(str(other), name="mm")  # other files under an existing name


def test_bad_sources(tmp_path, data_dir):
    with pytest.raises(InputError, match="(?i)no fluxnet files"):
        train_sources.network_of(str(tmp_path))
    with pytest.raises(InputError, match="neither a folder"):
        train_sources.network_of("no-such-network")


def test_train_on_a_folder_ingests_it(shared_data, tmp_path, data_dir, capsys):
    folder = tmp_path / "four"
    folder.mkdir()
    src = shared_data / "fluxnet2015_monthly"
    for site in ("AT-Neu", "BE-Vie", "CH-Cha", "DE-Tha"):
        path = next(src.glob(f"FLX_{site}_*.csv"))
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "FluxNET_sites.csv").write_bytes((src / "FluxNET_sites.csv").read_bytes())
    listed = tmp_path / "two.txt"
    listed.write_text("AT-Neu\nBE-Vie\n")
    argv = ["train", "--sites-source", str(folder), "--ingest-as", "four", "--sites", str(listed),
            "--trees", "5", "--folds", "2", "--splits", "random"]  # fmt: skip
    assert cli.main(argv) == 0
    from models import registry

    meta = registry.read_meta(registry.latest_version())
    assert meta["training_data"]["source"] == "network:four" and meta["training_data"]["n_sites"] == 2
    assert meta["settings"]["site_list_file"] == str(listed)
    assert [r["site_id"] for r in meta["settings"]["site_list"]] == ["AT-Neu", "BE-Vie"]
    assert api.list_networks() == ["four"]


def test_train_defaults_to_the_catalogs_flux_network(demo_world, tmp_path, monkeypatch, capsys):
    import os
    import shutil

    root = tmp_path / "fluxlens-data"
    shutil.copytree(demo_world, root, copy_function=os.link)
    monkeypatch.setenv("FLUXLENS_DATA_DIR", str(root))
    assert train_sources.flux_networks() == ["fluxnet_demo"]  # ismn_demo has no LE, H
    assert cli.main(["train", "--trees", "5", "--folds", "2", "--splits", "random"]) == 0
    assert "training on station network fluxnet_demo" in capsys.readouterr().err
    from models import registry

    assert registry.read_meta(registry.latest_version())["training_data"]["source"] == "network:fluxnet_demo"


def test_train_without_a_flux_network_says_what_to_pass(data_dir, capsys):
    assert cli.main(["train", "--trees", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fluxlens train: error: ") and "no station network with LE and H" in err
    assert "--sites-source" in err and "fluxlens demo" in err and len(err.strip().splitlines()) == 1
