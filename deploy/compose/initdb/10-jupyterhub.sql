CREATE DATABASE jupyterhub;
